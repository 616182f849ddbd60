#!/usr/bin/env bash
# Bad input: one clear line naming the file, non-zero exit, no crash, nothing written.
source "$(dirname "$0")/lib.sh"

# state of a root: every file's path, size, mtime and content digest
snapshot() { (cd "$1" && find . -printf '%p %s %T@\n' | sort && find . -type f -name 'modules.*' -exec sha256sum {} + | sort); }

# expect NAME ROOT WANT-IN-MESSAGE CMD... : exit 1, one line on stderr naming WANT, nothing changed
expect_error() {
	local name=$1 root=$2 want=$3
	shift 3
	local before after out rc lines
	before=$(snapshot "$root")
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	after=$(snapshot "$root")
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
		fail "$name" "the root changed"
	else
		pass "$name"
		echo "#   $out"
	fi
}

tmp=$(mktmp)
mkdir "$tmp/root"
fixture_copy base-54 "$tmp/root"
dir=$tmp/root/lib/modules/$KVER54
victim=$dir/kernel/drivers/net/virtio_net.ko

# a truncated .ko (ELF header intact, sections cut off)
rm -f "$victim"
head -c 3000 "$FIXTURES/base-54/lib/modules/$KVER54/kernel/drivers/net/virtio_net.ko" >"$victim"
expect_error truncated-ko "$tmp/root" "$victim" "$KMODCTL" --root "$tmp/root" modules
expect_error truncated-ko-json "$tmp/root" "$victim" "$KMODCTL" --root "$tmp/root" modules --json
expect_error truncated-ko-info "$tmp/root" "$victim" "$KMODCTL" --root "$tmp/root" info "$victim"

# a file named .ko that is not ELF
rm -f "$victim"
echo "this is not a kernel module" >"$victim"
expect_error non-elf-ko "$tmp/root" "$victim" "$KMODCTL" --root "$tmp/root" modules
# an empty one
: >"$victim"
expect_error empty-ko "$tmp/root" "$victim" "$KMODCTL" --root "$tmp/root" modules
cp "$FIXTURES/base-54/lib/modules/$KVER54/kernel/drivers/net/virtio_net.ko" "$victim"

# a missing tree
expect_error missing-tree "$tmp/root" "$tmp/root/lib/modules/9.9.9-1-amd64" \
	"$KMODCTL" --root "$tmp/root" --kernel 9.9.9-1-amd64 modules
mkdir "$tmp/empty"
expect_error missing-root "$tmp/empty" "$tmp/empty/lib/modules" "$KMODCTL" --root "$tmp/empty" modules

# a tree without modules.dep
mv "$dir/modules.dep" "$tmp/modules.dep.saved"
expect_error no-modules-dep "$tmp/root" "$dir/modules.dep" "$KMODCTL" --root "$tmp/root" modules
mv "$tmp/modules.dep.saved" "$dir/modules.dep"

# an unreadable Module.symvers: a directory in its place, then binary garbage, then a bad line
sv=$tmp/root/usr/src/linux-headers-$KVER54/Module.symvers
rm -f "$sv"
mkdir "$sv"
expect_error symvers-unreadable "$tmp/root" "$sv" "$KMODCTL" --root "$tmp/root" modules
rmdir "$sv"
head -c 4096 /dev/urandom >"$sv"
printf '\0' >>"$sv"
expect_error symvers-binary "$tmp/root" "$sv" "$KMODCTL" --root "$tmp/root" modules
{ head -n 100 "$FIXTURES/full-54/usr/src/linux-headers-$KVER54/Module.symvers"; echo "0xzz	broken"; } >"$sv"
expect_error symvers-malformed "$tmp/root" "$sv:101" "$KMODCTL" --root "$tmp/root" modules
expect_error symvers-explicit-missing "$tmp/root" "$tmp/nope.symvers" \
	"$KMODCTL" --root "$tmp/root" --symvers "$tmp/nope.symvers" info virtio_net

finish
