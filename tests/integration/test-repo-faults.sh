#!/usr/bin/env bash
# Repository refresh against a faulty server or hostile metadata: server down, 404, HTTP 500
# (bounded retries), a truncated primary, a checksum mismatch, a redirect to file://, an
# oversized or malformed repomd.xml, an unsafe location. Each: exit 1, one error line
# naming the URL, and the cache and state exactly as before.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-repo-test.sh"

T=$(mktmp)
src=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>"$T/err") || {
	fail setup "no cached repository: $(tail -n 3 "$T/err" | tr '\n' ' ')"
	finish
}
# variants of the repository metadata, each in a directory of the served tree
variant() { # name
	mkdir -p "$T/srv/$1"
	cp -al "$src/repodata" "$T/srv/$1/"
}
variant good
url=$(repo_serve "$T/srv") || { fail setup "nginx did not start"; finish; }
port=${url##*:}
primary=$(basename "$(primary_of "$src")")
psize=$(stat -c %s "$src/repodata/$primary")

# a root that has accepted the good metadata once: every fault starts from a copy of it
mkdir -p "$T/tpl"
repo_add_conf "$T/tpl" kmp "$url/good" gpgcheck=0
out=$("$KMODCTL" --root "$T/tpl" repo refresh 2>&1) || { fail setup "first refresh: $out"; finish; }
n=0
root_at() { # URL [fresh]: sets r to a new root whose repository 'kmp' points at URL
	n=$((n + 1))
	r=$T/root$n
	if [ "${2:-}" = fresh ]; then mkdir -p "$r"; else cp -a "$T/tpl" "$r"; fi
	repo_add_conf "$r" kmp "$1" gpgcheck=0
}

# --- server down (fresh and refreshed roots); bounded retries keep it short
url2=$(repo_serve "$T/srv")
repo_server_stop "$url2"
for kind in fresh refreshed; do
	root_at "$url2/good" $([ $kind = fresh ] && echo fresh)
	t0=$(date +%s%N)
	refresh_fails "server-down-$kind" "$r" "$url2/good/repodata/repomd.xml: cannot connect"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	if [ "$ms" -lt 10000 ]; then pass "server-down-bounded-$kind(${ms} ms)"; else fail "server-down-bounded-$kind" "$ms ms"; fi
done
root_at "$url2/good" fresh
"$KMODCTL" --root "$r" repo refresh >/dev/null 2>&1
if [ ! -e "$r/var" ]; then pass server-down-creates-nothing; else fail server-down-creates-nothing "$(find "$r/var")"; fi

# --- 404 of repomd.xml; of the primary metadata
root_at "$url/nothing-here"
refresh_fails 404-repomd "$r" "$url/nothing-here/repodata/repomd.xml: server returned HTTP 404"
variant noprimary
rm "$T/srv/noprimary/repodata/$primary"
root_at "$url/noprimary"
refresh_fails 404-primary "$r" "$url/noprimary/repodata/$primary: server returned HTTP 404" --force
root_at "$url/noprimary" fresh
refresh_fails 404-primary-fresh "$r" "$url/noprimary/repodata/$primary: server returned HTTP 404"

# --- HTTP 500: retried twice with backoff, then one error
root_at "$url/error500" fresh
before=$(grep -c 'error500' "$_REPO_SERVERS/$port/access.log")
refresh_fails http-500 "$r" "$url/error500/repodata/repomd.xml: server returned HTTP 500"
tries=$(( $(grep -c 'error500' "$_REPO_SERVERS/$port/access.log") - before ))
if [ "$tries" -eq 3 ]; then pass http-500-three-attempts; else fail http-500-three-attempts "$tries requests"; fi

# --- truncated primary (shorter than repomd.xml says), refreshed (--force) and fresh
variant trunc
replace_with "$T/srv/trunc/repodata/$primary" head -c $((psize / 2))
root_at "$url/trunc"
refresh_fails truncated "$r" "$url/trunc/repodata/$primary: truncated: $((psize / 2)) of $psize bytes" --force
root_at "$url/trunc" fresh
refresh_fails truncated-fresh "$r" "$url/trunc/repodata/$primary: truncated"
# longer than repomd.xml says: stopped at the size cap
variant long
replace_with "$T/srv/long/repodata/$primary" sh -c 'cat; head -c 1000 /dev/zero'
root_at "$url/long" fresh
refresh_fails longer-than-listed "$r" "$url/long/repodata/$primary: larger than the $psize bytes listed in repomd.xml"

# --- checksum mismatch: same size, one byte changed
variant badsum
python3 - "$T/srv/badsum/repodata/$primary" <<'PY'
import os, sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
d[len(d) // 2] ^= 0xff
os.unlink(p)
open(p, 'wb').write(d)
PY
root_at "$url/badsum"
refresh_fails checksum-mismatch "$r" "$url/badsum/repodata/$primary: checksum mismatch" --force
root_at "$url/badsum" fresh
refresh_fails checksum-mismatch-fresh "$r" "$url/badsum/repodata/$primary: checksum mismatch"

# --- redirects: to file:// refused; within http followed
root_at "$url/to-file/good"
refresh_fails redirect-to-file "$r" "$url/to-file/good/repodata/repomd.xml: redirect to another scheme refused" --force
root_at "$url/to-http/good" fresh
if out=$("$KMODCTL" --root "$r" repo refresh 2>&1) && [[ "$out" == "Repository 'kmp': "*" packages"* ]]; then
	pass redirect-within-http
else
	fail redirect-within-http "$out"
fi

# --- hostile repomd.xml: oversized, not XML, an unsafe primary location, no checksum
variant big
replace_with "$T/srv/big/repodata/repomd.xml" sh -c 'cat; printf "<!-- %05000000d -->\n" 0'
root_at "$url/big"
refresh_fails repomd-oversized "$r" "$url/big/repodata/repomd.xml: larger than the limit"
variant garbage
replace_with "$T/srv/garbage/repodata/repomd.xml" sh -c 'head -c 300'
root_at "$url/garbage"
refresh_fails repomd-malformed "$r" "$url/garbage/repodata/repomd.xml: not a valid repomd.xml"
variant escape
replace_with "$T/srv/escape/repodata/repomd.xml" sed "s|href=\"repodata/$primary\"|href=\"../../../etc/passwd\"|"
root_at "$url/escape"
refresh_fails unsafe-location "$r" "$url/escape/repodata/repomd.xml: unsafe primary location '../../../etc/passwd'"
variant nosum
replace_with "$T/srv/nosum/repodata/repomd.xml" sed 's|<checksum type="sha256">|<checksum type="md5">|'
root_at "$url/nosum"
refresh_fails no-sha256 "$r" "$url/nosum/repodata/repomd.xml: primary metadata has no sha256 checksum"

# --- a transfer cut short (the server closes before Content-Length): retried, then one error
cat >"$T/short.py" <<'PY'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
n = 0
while True:
    c, _ = s.accept()
    c.recv(65536)
    n += 1
    open(sys.argv[1], "w").write(str(n))
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" + b"<repomd>" * 10)
    c.close()
PY
python3 "$T/short.py" "$T/short.count" >"$T/short.port" &
short_pid=$!
trap 'kill $short_pid 2>/dev/null; _repo_stop_all; _cleanup' EXIT
for i in $(seq 100); do [ -s "$T/short.port" ] && break; sleep 0.05; done
surl=http://127.0.0.1:$(cat "$T/short.port")
root_at "$surl" fresh
refresh_fails transfer-cut-short "$r" "$surl/repodata/repomd.xml: transfer ended early: 80 of 100000 bytes"
if [ "$(cat "$T/short.count" 2>/dev/null)" = 3 ]; then pass transfer-cut-short-retried; else fail transfer-cut-short-retried "$(cat "$T/short.count" 2>/dev/null) attempts"; fi
kill $short_pid 2>/dev/null

# --- primary metadata that matches repomd.xml but is not valid XML: the parser (a child
# without privileges) refuses it
variant badxml
rm "$T/srv/badxml/repodata/$primary"
printf '<?xml version="1.0"?>\n<metadata packages="1"><package type="rpm"><name>x</name>\n' |
	gzip -n >"$T/srv/badxml/repodata/bad-primary.xml.gz"
bsum=$(sha256sum "$T/srv/badxml/repodata/bad-primary.xml.gz" | cut -d' ' -f1)
bsize=$(stat -c %s "$T/srv/badxml/repodata/bad-primary.xml.gz")
python3 - "$T/srv/badxml/repodata/repomd.xml" "$primary" "$bsum" "$bsize" <<'PY'
import os, re, sys
p, old, bsum, bsize = sys.argv[1:]
t = open(p).read()
t = t.replace(old[:64] + "</checksum>", bsum + "</checksum>")
t = t.replace("repodata/" + old, "repodata/bad-primary.xml.gz")
t = re.sub(r'(<location href="repodata/bad-primary.xml.gz"/>\s*<timestamp>\d+</timestamp>\s*<size>)\d+',
           lambda m: m.group(1) + bsize, t)
os.unlink(p)
open(p, "w").write(t)
PY
root_at "$url/badxml"
refresh_fails malformed-primary "$r" "$url/badxml/repodata/bad-primary.xml.gz: cannot parse primary metadata: "
root_at "$url/badxml" fresh
refresh_fails malformed-primary-fresh "$r" "cannot parse primary metadata"

# --- file:// faults: a missing directory
root_at "file://$T/does-not-exist"
refresh_fails file-missing "$r" "file://$T/does-not-exist/repodata/repomd.xml: no such file"

# the roots that saw a fault still load their repository
npkg=$(grep -c . <<<"$(ls "$src/x86_64")")
bad=
for r in "$T"/root*; do
	[ -e "$r/var/lib/kmodd/repos/kmp.state" ] || continue
	"$KMODCTL" --root "$r" repo list 2>/dev/null | grep -Eq "^kmp +yes +no +99 +$npkg " || bad="$bad ${r##*/}"
done
if [ -z "$bad" ]; then pass still-loads; else fail still-loads "$bad"; fi
finish
