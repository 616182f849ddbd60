#!/usr/bin/env bash
# kmodctl repo add/list/remove round trip; refresh of the full-54 KMP repository over http
# (nginx) and file://; the .solv is reused (a second refresh parses nothing, and the pool
# loads with the primary metadata gone); a malformed .repo line is reported as file:line
# and the rest of the file still applies.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-repo-test.sh"

T=$(mktmp)

# --- add / list / remove round trip
R=$T/rt
mkdir -p "$R"
check add "$KMODCTL" --root "$R" repo add one http://127.0.0.1:1/one --no-gpgcheck --name "First one" --priority 10
check add-second "$KMODCTL" --root "$R" repo add two file:///srv/two --gpgkey /srv/key.asc --disabled
out=$("$KMODCTL" --root "$R" repo add one http://x/ --no-gpgcheck 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && [[ "$out" == *"already exists"* ]]; then pass add-duplicate-refused; else fail add-duplicate-refused "exit $rc: $out"; fi
out=$("$KMODCTL" --root "$R" repo add three ftp://x/ --no-gpgcheck 2>&1)
rc=$?
if [ "$rc" -eq 2 ] && [[ "$out" == *"ftp://x/"* ]]; then pass add-bad-url-refused; else fail add-bad-url-refused "exit $rc: $out"; fi
out=$("$KMODCTL" --root "$R" repo add three http://x/ 2>&1)
rc=$?
if [ "$rc" -eq 2 ] && [[ "$out" == *"--gpgkey"* ]]; then pass add-gpgcheck-needs-key; else fail add-gpgcheck-needs-key "exit $rc: $out"; fi
list=$("$KMODCTL" --root "$R" repo list 2>&1)
if grep -Eq '^one +yes +no +10 +- +- +http://127.0.0.1:1/one$' <<<"$list" &&
	grep -Eq '^two +no +yes +99 ' <<<"$list"; then
	pass list
else
	fail list "$list"
fi
json=$("$KMODCTL" --root "$R" repo list --json 2>&1)
if python3 -c '
import json, sys
l = json.load(sys.stdin)
d = {r["id"]: r for r in l}
assert d["one"]["name"] == "First one" and d["one"]["priority"] == 10 and not d["one"]["gpgcheck"]
assert d["two"]["gpgkey"] == "/srv/key.asc" and not d["two"]["enabled"] and d["two"]["packages"] is None
' <<<"$json"; then pass list-json; else fail list-json "$json"; fi
check remove "$KMODCTL" --root "$R" repo remove one
if [ ! -e "$R/etc/kmodd/repos.d/one.repo" ] && ! "$KMODCTL" --root "$R" repo list | grep -q '^one '; then
	pass removed
else
	fail removed "one.repo still there"
fi
out=$("$KMODCTL" --root "$R" repo remove one 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && [[ "$out" == *"No repository 'one'"* ]]; then pass remove-unknown; else fail remove-unknown "exit $rc: $out"; fi
# a file with two sections keeps the other one
cat >"$R/etc/kmodd/repos.d/multi.repo" <<'REPO'
# two repositories
[a]
baseurl=http://127.0.0.1:1/a
gpgcheck=0

[b]
baseurl=http://127.0.0.1:1/b
gpgcheck=0
REPO
"$KMODCTL" --root "$R" repo remove a >/dev/null 2>&1
if grep -q '^\[b\]' "$R/etc/kmodd/repos.d/multi.repo" && ! grep -q '^\[a\]' "$R/etc/kmodd/repos.d/multi.repo" &&
	grep -q '# two repositories' "$R/etc/kmodd/repos.d/multi.repo"; then
	pass remove-keeps-other-sections
else
	fail remove-keeps-other-sections "$(cat "$R/etc/kmodd/repos.d/multi.repo")"
fi

# --- a malformed line: file:line, and the rest still applies
R=$T/bad
mkdir -p "$R/etc/kmodd/repos.d"
cat >"$R/etc/kmodd/repos.d/bad.repo" <<'REPO'
[good]
baseurl=http://127.0.0.1:1/good
this line is not valid
priority=banana
name=After the bad lines
gpgcheck=0
[bad id/x]
baseurl=http://127.0.0.1:1/bad
[nourl]
name=No URL
REPO
out=$("$KMODCTL" --root "$R" repo list 2>"$T/bad.err")
err=$(cat "$T/bad.err")
f=$R/etc/kmodd/repos.d/bad.repo
if [[ "$err" == *"$f:3: expected 'key=value'"* ]] && [[ "$err" == *"$f:4: priority=banana"* ]] &&
	[[ "$err" == *"$f:7: invalid repository id"* ]] && [[ "$err" == *"$f:9: repository 'nourl' has no valid baseurl"* ]]; then
	pass malformed-line-file-line
else
	fail malformed-line-file-line "$err"
fi
if grep -Eq '^good +yes +no +99 ' <<<"$out" && [ "$(grep -c '^[a-z]' <<<"$out")" -eq 1 ] &&
	"$KMODCTL" --root "$R" repo list --json 2>/dev/null | grep -q '"name":"After the bad lines"'; then
	pass malformed-line-rest-applies
else
	fail malformed-line-rest-applies "$out"
fi

# --- refresh over http and file:// of the full-54 repository
if ! repo_copy "$T/repo" 2>"$T/err"; then
	fail setup "no cached repository: $(tail -n 3 "$T/err" | tr '\n' ' ')"
	finish
fi
npkg=$(ls "$T/repo/x86_64" | wc -l)
if ! url=$(repo_serve "$T/repo"); then
	fail serve "nginx did not start"
	finish
fi

for scheme in http file; do
	R=$T/root-$scheme
	mkdir -p "$R"
	[ $scheme = http ] && u=$url || u=$(repo_file_url "$T/repo")
	"$KMODCTL" --root "$R" repo add kmp "$u" --no-gpgcheck >/dev/null
	t0=$(date +%s%N)
	out=$("$KMODCTL" --root "$R" repo refresh 2>&1)
	rc=$?
	t1=$(date +%s%N)
	if [ $rc -eq 0 ] && [[ "$out" == "Repository 'kmp': $npkg packages, metadata of "*"." ]]; then
		pass "refresh-$scheme($(( (t1 - t0) / 1000000 )) ms)"
	else
		fail "refresh-$scheme" "exit $rc: $out"
	fi
	solv=$(ls "$R"/var/cache/kmodd/repos/kmp/*.solv 2>/dev/null)
	sum=$(basename "$(primary_of "$T/repo")" | cut -c1-64)
	if [ "$solv" = "$R/var/cache/kmodd/repos/kmp/$sum.solv" ] &&
		[ "$(stat -c '%u %a' "$solv")" = "0 644" ] &&
		[ "$(ls -A "$R/var/cache/kmodd/repos/kmp")" = "$sum.solv" ] &&
		grep -q "^primary=$sum$" "$R/var/lib/kmodd/repos/kmp.state"; then
		pass "solv-keyed-by-checksum-$scheme"
	else
		fail "solv-keyed-by-checksum-$scheme" "$(ls -la "$R/var/cache/kmodd/repos/kmp")"
	fi
	if "$KMODCTL" --root "$R" repo list | grep -Eq "^kmp +yes +no +99 +$npkg "; then
		pass "list-packages-$scheme"
	else
		fail "list-packages-$scheme" "$("$KMODCTL" --root "$R" repo list 2>&1)"
	fi
done

# --- zstd-compressed primary metadata (what newer createrepo_c writes)
mkdir -p "$T/zst/repodata"
p=$(primary_of "$T/repo")
zcat "$p" | zstd -q -3 -o "$T/zst/primary.xml.zst"
zsum=$(sha256sum "$T/zst/primary.xml.zst" | cut -d' ' -f1)
mv "$T/zst/primary.xml.zst" "$T/zst/repodata/$zsum-primary.xml.zst"
python3 - "$T/repo/repodata/repomd.xml" "$T/zst/repodata/repomd.xml" "$(basename "$p")" "$zsum" \
	"$(stat -c %s "$T/zst/repodata/$zsum-primary.xml.zst")" <<'PY'
import re, sys
src, dst, old, zsum, zsize = sys.argv[1:]
t = open(src).read()
oldsum = old[:64]
t = t.replace(oldsum + "</checksum>", zsum + "</checksum>")
t = t.replace("repodata/" + old, "repodata/%s-primary.xml.zst" % zsum)
t = re.sub(r'(<location href="repodata/%s-primary.xml.zst"/>\s*<timestamp>\d+</timestamp>\s*<size>)\d+' % zsum,
           lambda m: m.group(1) + zsize, t)
open(dst, "w").write(t)
PY
R=$T/root-zst
mkdir -p "$R"
"$KMODCTL" --root "$R" repo add kmp "$(repo_file_url "$T/zst")" --no-gpgcheck >/dev/null
out=$("$KMODCTL" --root "$R" repo refresh 2>&1)
if [[ "$out" == "Repository 'kmp': $npkg packages, metadata of "*"." ]] && [ -f "$R/var/cache/kmodd/repos/kmp/$zsum.solv" ]; then
	pass refresh-zstd-primary
else
	fail refresh-zstd-primary "$out"
fi

# --- a second refresh reuses the .solv: the primary metadata is gone from the server and
# nothing fails; the pool still loads from the .solv alone.
R=$T/root-http
before=$(state_snapshot "$R")
primary=$(primary_of "$T/repo")
mv "$primary" "$T/primary.away"
t0=$(date +%s%N)
out=$("$KMODCTL" --root "$R" --verbose repo refresh 2>"$T/v.err")
rc=$?
t1=$(date +%s%N)
if [ $rc -eq 0 ] && [[ "$out" == *"(unchanged)."* ]] && ! grep -q primary.xml "$T/v.err" &&
	[ "$(state_snapshot "$R")" = "$before" ]; then
	pass "second-refresh-parses-nothing($(( (t1 - t0) / 1000000 )) ms)"
else
	fail second-refresh-parses-nothing "exit $rc: $out $(tail -n 3 "$T/v.err")"
fi
out=$("$KMODCTL" --root "$R" --verbose repo list 2>&1)
if grep -Eq "^kmp +yes +no +99 +$npkg " <<<"$out" && grep -q "packages from .*\.solv" <<<"$out"; then
	pass pool-loads-from-solv-only
else
	fail pool-loads-from-solv-only "$out"
fi
# --force needs the primary metadata again: it fails cleanly, then works once it is back
refresh_fails force-needs-primary "$R" "primary.xml.gz: server returned HTTP 404" --force
mv "$T/primary.away" "$primary"
out=$("$KMODCTL" --root "$R" repo refresh --force 2>&1)
if [[ "$out" == "Repository 'kmp': $npkg packages, metadata of "*"UTC." ]] &&
	[ "$(state_snapshot "$R" | grep -v kmp.state)" = "$(grep -v kmp.state <<<"$before")" ]; then
	pass force-refresh
else
	fail force-refresh "$out"
fi

# --- the XML parser runs without privileges
if [ "$(id -u)" = 0 ]; then
	"$KMODCTL" --root "$R" --verbose repo refresh --force >/dev/null 2>"$T/v.err"
	if grep -q "parsing .*primary.xml.gz as uid 65534" "$T/v.err"; then
		pass parser-unprivileged
	else
		fail parser-unprivileged "$(grep -i pars "$T/v.err" | head -n 3)"
	fi
fi

# --- refresh --json
json=$("$KMODCTL" --root "$R" repo refresh --json 2>&1)
if python3 -c '
import json, sys
l = json.load(sys.stdin)
assert len(l) == 1 and l[0]["id"] == "kmp" and l[0]["ok"] and not l[0]["changed"]
assert l[0]["packages"] == int(sys.argv[1]) and l[0]["error"] is None
' "$npkg" <<<"$json"; then pass refresh-json; else fail refresh-json "$json"; fi

# --- a progress line on a terminal
if command -v script >/dev/null; then
	out=$(script -qec "$KMODCTL --root $R repo refresh --force" /dev/null 2>&1)
	if [[ "$out" == *"kmp: "*"-primary.xml.gz "*" MiB"* ]] && [[ "$out" == *"Repository 'kmp': $npkg packages"* ]]; then
		pass progress-on-tty
	else
		fail progress-on-tty "$(tr '\r' '|' <<<"$out" | head -c 300)"
	fi
	out=$("$KMODCTL" --root "$R" repo refresh --force 2>&1)
	if [[ "$out" != *MiB* ]]; then pass no-progress-without-tty; else fail no-progress-without-tty "$out"; fi
else
	skip progress-on-tty "no script(1)"
fi

# --- only a trusted .solv is loaded: a group-writable or corrupt one is "not refreshed"
solv=$(ls "$R"/var/cache/kmodd/repos/kmp/*.solv)
chmod 664 "$solv"
out=$("$KMODCTL" --root "$R" repo list 2>&1)
chmod 644 "$solv"
if grep -Eq '^kmp +yes +no +99 +- ' <<<"$out"; then pass untrusted-solv-ignored; else fail untrusted-solv-ignored "$out"; fi
cp "$solv" "$T/solv.good"
head -c 100000 "$T/solv.good" >"$solv"
out=$("$KMODCTL" --root "$R" repo list 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -Eq '^kmp +yes +no +99 +- ' <<<"$out"; then pass corrupt-solv-ignored; else fail corrupt-solv-ignored "exit $rc: $out"; fi
# a refresh repairs it
rm "$solv"
out=$("$KMODCTL" --root "$R" repo refresh 2>&1)
if "$KMODCTL" --root "$R" repo list | grep -Eq "^kmp +yes +no +99 +$npkg "; then pass missing-solv-rebuilt; else fail missing-solv-rebuilt "$out"; fi

# --- kill -9 during refreshes: the state always names a loadable .solv, the next refresh
# works and leaves no temporaries
bad=
for i in 1 2 3 4 5 6 7 8; do
	"$KMODCTL" --root "$R" repo refresh --force >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(( (i * 137) % 10 ))$(( i % 10 ))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	if ! "$KMODCTL" --root "$R" repo list | grep -Eq "^kmp +yes +no +99 +$npkg "; then
		bad="$bad kill$i:unloadable"
	fi
done
# what a kill in the middle of a write leaves (planted, in case no kill landed there)
touch "$R/var/lib/kmodd/repos/kmp.state.tmp.AbCdEf" "$R/var/cache/kmodd/repos/kmp/.#x.solv.AbCdEf"
"$KMODCTL" --root "$R" repo refresh --force >/dev/null 2>&1 || bad="$bad refresh-after"
left=$(find "$R/var/cache/kmodd" "$R/var/lib/kmodd" -name '.#*' -o -name '*.tmp.*' -o -name 'primary.*')
[ -z "$left" ] || bad="$bad leftovers:$left"
if [ -z "$bad" ]; then pass kill-9-during-refresh; else fail kill-9-during-refresh "$bad"; fi

# --- remove drops the cached metadata and the state
"$KMODCTL" --root "$R" repo remove kmp >/dev/null
if [ ! -e "$R/var/cache/kmodd/repos/kmp" ] && [ ! -e "$R/var/lib/kmodd/repos/kmp.state" ]; then
	pass remove-drops-cache
else
	fail remove-drops-cache "$(find "$R/var" -type f)"
fi
finish
