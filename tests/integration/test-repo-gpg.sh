#!/usr/bin/env bash
# Signed repositories: repomd.xml.asc checked with gpgv against the repository's key before
# repomd.xml is read; a tampered, unsigned or wrongly signed repomd.xml is refused; an older
# (validly signed) repomd.xml than the last accepted one is refused. Keys are throwaway keys
# made here. Each failure: exit 1, one line naming the URL, state and cache unchanged.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-repo-test.sh"

T=$(mktmp)
command -v gpg >/dev/null && command -v gpgv >/dev/null || { skip all "gpg or gpgv missing"; finish; }
src=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>"$T/err") || {
	fail setup "no cached repository: $(tail -n 3 "$T/err" | tr '\n' ' ')"
	finish
}
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
trap 'gpgconf --kill gpg-agent 2>/dev/null; _repo_stop_all; _cleanup' EXIT
for who in good other; do
	gpg --batch --quiet --passphrase '' --quick-gen-key "kmodd $who <$who@kmodd.test>" ed25519 sign never 2>"$T/err" ||
		{ fail setup "gpg key generation: $(tail -n 2 "$T/err")"; finish; }
done
gpg --batch --armor --export good@kmodd.test >"$T/good.asc"
gpg --batch --export good@kmodd.test >"$T/good.gpg"

variant() { # name
	mkdir -p "$T/srv/$1"
	cp -al "$src/repodata" "$T/srv/$1/"
}
sign() { # name [key]
	gpg --batch --yes --quiet --local-user "${2:-good}@kmodd.test" --armor --detach-sign \
		-o "$T/srv/$1/repodata/repomd.xml.asc" "$T/srv/$1/repodata/repomd.xml"
}
bump() { # name seconds: every timestamp (and the revision) of repomd.xml later by seconds
	python3 - "$T/srv/$1/repodata/repomd.xml" "$2" <<'PY'
import os, re, sys
p, d = sys.argv[1], int(sys.argv[2])
t = open(p).read()
t = re.sub(r'<(timestamp|revision)>(\d+)<', lambda m: '<%s>%d<' % (m.group(1), int(m.group(2)) + d), t)
os.unlink(p)
open(p, 'w').write(t)
PY
}

variant signed && sign signed
variant tampered && sign tampered
replace_with "$T/srv/tampered/repodata/repomd.xml" sed 's|<revision>\([0-9]*\)</revision>|<revision>\1-evil</revision>|'
variant unsigned
variant wrongkey && sign wrongkey other
variant newer && bump newer 1000 && sign newer
cp "$T/good.asc" "$T/srv/key.asc"
url=$(repo_serve "$T/srv") || { fail setup "nginx did not start"; finish; }

conf() { # root url gpgkey-line...
	local root=$1 u=$2
	shift 2
	repo_add_conf "$root" kmp "$u" gpgcheck=1 "$@"
}

# --- a good signature, armored key by path
mkdir -p "$T/tpl"
conf "$T/tpl" "$url/signed" "gpgkey=$T/good.asc"
if out=$("$KMODCTL" --root "$T/tpl" repo refresh 2>&1) && [[ "$out" == "Repository 'kmp': "*" packages"* ]]; then
	pass good-signature
else
	fail good-signature "$out"
	finish
fi
n=0
root_with() { # url gpgkey-line...: sets r to a copy of the accepted root, configured so
	n=$((n + 1))
	r=$T/root$n
	cp -a "$T/tpl" "$r"
	conf "$r" "$@"
}
root_with "$url/signed" "gpgkey=$T/good.gpg"
check good-signature-binary-key "$KMODCTL" --root "$r" repo refresh --force
root_with "$url/signed" "gpgkey=$url/key.asc"
check good-signature-key-over-http "$KMODCTL" --root "$r" repo refresh

# --- refused: tampered, unsigned, wrong key, no key configured
root_with "$url/tampered" "gpgkey=$T/good.asc"
refresh_fails tampered-repomd "$r" "$url/tampered/repodata/repomd.xml: bad signature"
root_with "$url/unsigned" "gpgkey=$T/good.asc"
refresh_fails unsigned-repomd "$r" "$url/unsigned/repodata/repomd.xml.asc: server returned HTTP 404 (not found); the repository is not signed"
root_with "$url/wrongkey" "gpgkey=$T/good.asc"
refresh_fails wrong-key "$r" "$url/wrongkey/repodata/repomd.xml: bad signature"
root_with "$url/signed"
refresh_fails no-gpgkey "$r" "$r/etc/kmodd/repos.d/kmp.repo: repository 'kmp' has gpgcheck=1 but no gpgkey="
root_with "$url/signed" "gpgkey=$T/missing.asc"
refresh_fails missing-gpgkey "$r" "$T/missing.asc: cannot read the repository key"
# a tampered repomd.xml is never parsed: even garbage is reported as a bad signature
variant garbage && sign garbage
replace_with "$T/srv/garbage/repodata/repomd.xml" head -c 100
root_with "$url/garbage" "gpgkey=$T/good.asc"
refresh_fails tampered-garbage "$r" "$url/garbage/repodata/repomd.xml: bad signature"

# --- anti-rollback: newer signed metadata accepted, then the older signed one refused
root_with "$url/newer" "gpgkey=$T/good.asc"
old_ts=$(sed -n 's/^timestamp=//p' "$r/var/lib/kmodd/repos/kmp.state")
if out=$("$KMODCTL" --root "$r" repo refresh 2>&1) &&
	[ "$(sed -n 's/^timestamp=//p' "$r/var/lib/kmodd/repos/kmp.state")" -eq $((old_ts + 1000)) ]; then
	pass newer-accepted
else
	fail newer-accepted "$out"
fi
conf "$r" "$url/signed" "gpgkey=$T/good.asc"
refresh_fails older-refused "$r" "$url/signed/repodata/repomd.xml: metadata timestamp $old_ts is older than the last accepted $((old_ts + 1000))"
refresh_fails older-refused-force "$r" "older than the last accepted" --force
# the same applies without gpgcheck
repo_add_conf "$r" kmp "$url/signed" gpgcheck=0
refresh_fails older-refused-unsigned "$r" "older than the last accepted"
# and the accepted metadata still loads
npkg=$(ls "$src/x86_64" | wc -l)
if "$KMODCTL" --root "$r" repo list | grep -Eq "^kmp +yes +no +99 +$npkg "; then
	pass still-loads
else
	fail still-loads "$("$KMODCTL" --root "$r" repo list 2>&1)"
fi
finish
