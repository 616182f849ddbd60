#!/usr/bin/env bash
# Faults while installing a package over http: server down, 404, truncated download, checksum
# mismatch. Each install fails with one clear line, writes nothing into the module tree or the
# database, leaves no package file in the cache, and `kmodctl verify` is clean afterwards.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-repo-test.sh"

KVER=$KVER54
[ -f "$SHIM" ] || { fail setup "$SHIM not built"; finish; }
work=$(mktmp)
repo_copy "$work/repo" || { fail setup "no cached repository"; finish; }
url=$(repo_serve "$work/repo") || { fail setup "nginx did not start"; finish; }
pkg=$(cd "$work/repo" && ls x86_64/e1000-kmp-amd64-*.rpm)
[ -n "$pkg" ] || { fail setup "no e1000 KMP in the repository"; finish; }

R=$work/root
mkdir -p "$R"
fixture_copy base-54 "$R"
"$KMODCTL" --root "$R" repo add kmp "$url" --no-gpgcheck >/dev/null &&
	"$KMODCTL" --root "$R" repo refresh >/dev/null || { fail setup "repo add/refresh failed"; finish; }
# a first package installed, so the database exists and must stay consistent
LD_PRELOAD=$SHIM KMODD_SHIM_ROOT=$R ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	"$KMODCTL" --root "$R" install -y mii >/dev/null 2>&1 || { fail setup "installing mii failed"; finish; }

# the module tree, the indexes, the database and the downloaded packages
snapshot() {
	(cd "$R" && find lib/modules var/lib/kmodd var/cache/kmodd/packages -type f 2>/dev/null |
		grep -v -e '-wal$' -e '-shm$' | sort | xargs -r sha256sum)
	sqlite3 "$R/var/lib/kmodd/kmodd.db" 'select name, evr from packages order by name' 2>/dev/null
}

# install_fails NAME WANT: `install -y e1000` exits 1 with one line naming WANT; nothing changed
install_fails() {
	local name=$1 want=$2 before after out rc lines
	before=$(snapshot)
	out=$(LD_PRELOAD=$SHIM KMODD_SHIM_ROOT=$R \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$KMODCTL" --root "$R" install -y e1000 2>&1 >/dev/null)
	rc=$?
	after=$(snapshot)
	lines=$(printf '%s\n' "$out" | grep -c .)
	if crashed $rc "$out"; then
		fail "$name" "crashed (rc=$rc): $out"
	elif [ $rc -ne 1 ]; then
		fail "$name" "exit $rc, expected 1: $out"
	elif [ "$lines" -ne 1 ]; then
		fail "$name" "expected one line, got $lines: $out"
	elif ! grep -qF -- "$want" <<<"$out"; then
		fail "$name" "message does not name $want: $out"
	elif [ "$before" != "$after" ]; then
		fail "$name" "the tree, database or package cache changed"
	elif [ -e "$R/sys/module/e1000" ]; then
		fail "$name" "e1000 was loaded"
	else
		pass "$name"
		echo "#   $out"
	fi
	if out=$("$KMODCTL" --root "$R" verify 2>&1); then
		pass "$name-verify-clean"
	else
		fail "$name-verify-clean" "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
	fi
}

# 404: the package file is gone from the server
mv "$work/repo/$pkg" "$work/saved.rpm"
install_fails package-404 "$pkg"
# truncated: the server has only the first half of the file
head -c $(( $(stat -c %s "$work/saved.rpm") / 2 )) "$work/saved.rpm" >"$work/repo/$pkg"
install_fails package-truncated "$pkg"
# checksum mismatch: same size, one byte changed in the middle
cp "$work/saved.rpm" "$work/repo/$pkg.new"
printf 'X' | dd of="$work/repo/$pkg.new" bs=1 seek=$(( $(stat -c %s "$work/saved.rpm") / 2 )) conv=notrunc status=none
mv "$work/repo/$pkg.new" "$work/repo/$pkg"
install_fails package-checksum-mismatch "$pkg"
# metadata that fails its checksum: the refresh is refused, the installed state is untouched
url2=$(repo_serve "$work/repo") || { fail setup "nginx did not start"; finish; }
primary=$(cd "$work/repo" && ls repodata/*-primary.xml.gz)
cp "$work/repo/$primary" "$work/primary.saved"
rm -f "$work/repo/$primary"
head -c 1000 "$work/primary.saved" >"$work/repo/$primary"
sed -i "s|^baseurl=.*|baseurl=$url2|" "$R"/etc/kmodd/repos.d/*.repo
before=$(snapshot)
out=$("$KMODCTL" --root "$R" repo refresh --force 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ "$before" = "$(snapshot)" ] && grep -q primary <<<"$out"; then
	pass metadata-checksum-refused
else
	fail metadata-checksum-refused "rc=$rc: $out"
fi
check metadata-checksum-verify-clean "$KMODCTL" --root "$R" verify
rm -f "$work/repo/$primary"
cp "$work/primary.saved" "$work/repo/$primary"

# server down
rm -f "$work/repo/$pkg"
cp "$work/saved.rpm" "$work/repo/$pkg"
repo_server_stop "$url"
repo_server_stop "$url2"
install_fails server-down "127.0.0.1"

finish
