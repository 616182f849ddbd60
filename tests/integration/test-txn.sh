#!/bin/bash
# Transactions: installing a KMP from a repository served by nginx (file under updates/,
# indexes equal to depmod's, database rows, the module loaded through the shim), the lock,
# removal (in use refused, --force, reverse dependencies, back to the state before), hostile
# packages, checksum and digest failures, and full disks: each refused with the state before.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-txn.sh"

MOUNTS=()
trap 'for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done; _repo_stop_all; _cleanup' EXIT

T=$(mktmp)
T=$T/root
mkdir -p "$T"
txn_root "$T"
A=$(state_of "$T")
E1000_REL=updates/drivers/net/ethernet/intel/e1000/e1000.ko
E1000=$T/lib/modules/$KVER/$E1000_REL

no_leftovers() { # root
	local l
	[ ! -e "$1/var/lib/kmodd/journal" ] || { echo "journal left"; return 1; }
	l=$(find "$1/lib/modules/$KVER" -name '.kmodd-txn.*'; depmod_leftovers "$1/lib/modules/$KVER")
	[ -z "$l" ] || { echo "temporaries left: $l"; return 1; }
}

# ---- install over http ----
URL=$(repo_serve "$REPO") || fail serve "nginx did not start"
P=$(pkg e1000)
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --load e1000 --file "$P" \
	"$URL/x86_64/$(basename "$P")" 2>&1)
rc=$?
if [ $rc = 0 ] && [ -f "$E1000" ]; then pass install-http; else fail install-http "rc=$rc $out"; fi
check install-indexes-like-depmod indexes_like_depmod "$T"
if cmp -s "$E1000" <(rpm2cpio "$P" | cpio -i --to-stdout "*e1000.ko" 2>/dev/null); then
	pass install-content
else
	fail install-content "e1000.ko differs from the package's"
fi
rows=$(sqlite3 "$T/var/lib/kmodd/kmodd.db" \
	"select p.name || ' ' || p.reason || ' ' || f.path || ' ' || f.sha256 from packages p join files f on f.package_id = p.id")
want="e1000-kmp-amd64 user lib/modules/$KVER/$E1000_REL $(sha256sum <"$E1000" | cut -d' ' -f1)"
[ "$rows" = "$want" ] && pass install-db-rows || fail install-db-rows "got '$rows'"
ndeps=$(sqlite3 "$T/var/lib/kmodd/kmodd.db" "select count(*) from deps where kind='requires'")
[ "$ndeps" -gt 10 ] && pass install-db-deps || fail install-db-deps "$ndeps requires"
jm=$(sqlite3 "$T/var/lib/kmodd/kmodd.db" "pragma journal_mode; pragma user_version" | tr '\n' ' ')
[ "$jm" = "wal 1 " ] && pass db-wal-schema || fail db-wal-schema "$jm"
if [ "$(cat "$T/sys/module/e1000/initstate" 2>/dev/null)" = live ] &&
	grep -qx 'load e1000' "$T/sys/module/.kmodd-shim.log"; then
	pass install-loaded
else
	fail install-loaded "$out"
fi
check install-verify "$KMODCTL" --root "$T" verify
check install-no-leftovers no_leftovers "$T"
dep=$(modprobe -d "$T" -S "$KVER" --show-depends e1000 2>&1)
[[ $dep == *"$E1000_REL"* ]] && pass install-modprobe-finds-it || fail install-modprobe-finds-it "$dep"
why=$("$KMODCTL" --root "$T" why e1000 --json 2>&1)
[[ $why == *'"reason":"user"'* || $why == *'"reason": "user"'* ]] && pass why || fail why "$why"
"$KMODCTL" --root "$T" list --installed | grep -q '^e1000-kmp-amd64 ' && pass list-installed ||
	fail list-installed "not listed"
B=$(state_of "$T")

# readers need no write access (a user's `kmodctl list`): the database is read as is
if [ "$(id -u)" = 0 ] && runuser -u nobody -- true 2>/dev/null; then
	chmod 755 "$(dirname "$T")" "$T"
	out=$(runuser -u nobody -- "$KMODCTL" --root "$T" list --installed 2>&1)
	[[ $out == *e1000-kmp-amd64* ]] && pass list-as-unprivileged-user ||
		fail list-as-unprivileged-user "$out"
else
	skip list-as-unprivileged-user "needs root and runuser"
fi

# a second install of the same package changes nothing
run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$P" >/dev/null 2>&1
[ "$(state_of "$T")" = "$B" ] && pass install-again-noop || fail install-again-noop "state changed"

# ---- the lock ----
flock -o "$T/var/lib/kmodd/lock" sleep 5 &
holder=$!
sleep 0.3
"$KMODCTL" --root "$T" remove e1000 -y >/dev/null 2>&1
rc=$?
[ $rc = 5 ] && pass lock-held-exit-5 || fail lock-held-exit-5 "rc=$rc"
run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$(pkg mii)" >/dev/null 2>&1
rc=$?
[ $rc = 5 ] && pass lock-held-install || fail lock-held-install "rc=$rc"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
[ "$(state_of "$T")" = "$B" ] && pass lock-state-unchanged || fail lock-state-unchanged "changed"

# ---- removal ----
echo 1 >"$T/sys/module/e1000/refcnt" # a user of the device
out=$(run_shim "$T" "$KMODCTL" --root "$T" remove e1000 -y 2>&1)
rc=$?
if [ $rc = 1 ] && [[ $out == *"in use"* ]] && [ "$(state_of "$T")" = "$B" ]; then
	pass remove-in-use-refused
else
	fail remove-in-use-refused "rc=$rc $out"
fi
out=$(run_shim "$T" "$KMODCTL" --root "$T" remove e1000 --force -y 2>&1)
rc=$?
[ $rc = 0 ] && [ "$(state_of "$T")" = "$A" ] && pass remove-force || fail remove-force "rc=$rc $out"
check remove-force-indexes indexes_like_depmod "$T"
# a forced removal unloads even so (the shim, like the kernel, honours O_TRUNC)
[ ! -d "$T/sys/module/e1000" ] && pass remove-force-unloaded || fail remove-force-unloaded "still loaded"

# reverse dependencies: 8139too requires mii
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --load 8139too "$(pkg e1000)" "$(pkg mii)" \
	"$(pkg 8139too)" 2>&1)
rc=$?
if [ $rc = 0 ] && [ -d "$T/sys/module/mii" ] && [ -d "$T/sys/module/8139too" ]; then
	pass install-three-load-with-dependency
else
	fail install-three-load-with-dependency "rc=$rc $out"
fi
check install-three-indexes indexes_like_depmod "$T"
why=$("$KMODCTL" --root "$T" why mii 2>&1)
[[ $why == *"required by:  8139too-kmp-amd64"* ]] && pass why-required-by || fail why-required-by "$why"
out=$(run_shim "$T" "$KMODCTL" --root "$T" remove mii -y 2>&1)
rc=$?
left=$("$KMODCTL" --root "$T" list --installed --json | grep -o '"name":[^,]*' | tr -d ' \n')
if [ $rc = 0 ] && [ "$left" = '"name":"e1000-kmp-amd64"' ] && [[ $out == *8139too* ]] &&
	[ ! -d "$T/sys/module/mii" ] && [ ! -d "$T/sys/module/8139too" ]; then
	pass remove-reverse-dependencies
else
	fail remove-reverse-dependencies "rc=$rc left=$left $out"
fi
check remove-reverse-indexes indexes_like_depmod "$T"
check remove-reverse-verify "$KMODCTL" --root "$T" verify
out=$(run_shim "$T" "$KMODCTL" --root "$T" remove e1000 -y 2>&1)
[ "$(state_of "$T")" = "$A" ] && pass remove-back-to-before || fail remove-back-to-before "$out"
check remove-indexes-like-depmod indexes_like_depmod "$T"
check remove-verify "$KMODCTL" --root "$T" verify
"$KMODCTL" --root "$T" remove nosuch -y >/dev/null 2>&1
rc=$?
[ $rc = 3 ] && pass remove-unknown-exit-3 || fail remove-unknown-exit-3 "rc=$rc"
n=$("$KMODCTL" --root "$T" history --json | grep -c '"action"')
[ "$n" -ge 5 ] && pass history || fail history "$n entries"

# a package whose file was deleted by hand (and depmod run): verify says so, remove still works
run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$(pkg e1000)" >/dev/null 2>&1
rm -f "$E1000"
depmod -b "$T" "$KVER"
out=$("$KMODCTL" --root "$T" verify 2>&1)
rc=$?
[ $rc = 6 ] && [[ $out == *missing* ]] && pass verify-missing-file || fail verify-missing-file "rc=$rc $out"
out=$(run_shim "$T" "$KMODCTL" --root "$T" remove e1000 -y 2>&1)
rc=$?
[ $rc = 0 ] && [ "$(state_of "$T")" = "$A" ] && "$KMODCTL" --root "$T" verify >/dev/null 2>&1 &&
	pass remove-file-already-gone || fail remove-file-already-gone "rc=$rc $out"

# ---- hostile packages: refused, nothing written ----
H=$(mktmp)
SRCKO=$FIXTURES/full-54/lib/modules/$KVER/kernel/drivers/net/ethernet/intel/e1000/e1000.ko
ls -la "$T/etc/passwd" >"$H/passwd.before" 2>&1
for kind in dotdot absolute symlink setuid setgid device notmodule outside; do
	rpmf=$("$TXN_TOOL" mkrpm "$H" "$KVER" "$kind" "$SRCKO" 2>&1) || { fail "hostile-$kind" "mkrpm: $rpmf"; continue; }
	out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$rpmf" 2>&1)
	rc=$?
	if [ $rc != 0 ] && [[ $out == *"refusing payload file"* ]] && [ "$(state_of "$T")" = "$A" ] &&
		no_leftovers "$T" >/dev/null && [ ! -e "$T/etc/evil.ko" ] && [ ! -e "$T/lib/modules/$KVER/kernel/evil.ko" ]; then
		pass "hostile-$kind"
	else
		fail "hostile-$kind" "rc=$rc $out"
	fi
done
ls -la "$T/etc/passwd" 2>&1 | cmp -s - "$H/passwd.before" && pass hostile-passwd-untouched ||
	fail hostile-passwd-untouched "changed"
# a file of another package, or one no package owns: refused
rpmf=$("$TXN_TOOL" mkrpm "$H" "$KVER" overwrite "$SRCKO")
run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$(pkg e1000)" >/dev/null 2>&1
S=$(state_of "$T")
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$rpmf" 2>&1)
rc=$?
[ $rc != 0 ] && [[ $out == *"would overwrite a file of package e1000-kmp-amd64"* ]] &&
	[ "$(state_of "$T")" = "$S" ] && pass overwrite-other-package-refused ||
	fail overwrite-other-package-refused "rc=$rc $out"
run_shim "$T" "$KMODCTL" --root "$T" remove e1000 -y >/dev/null 2>&1
mkdir -p "$(dirname "$E1000")"
cp "$SRCKO" "$E1000"
S=$(state_of "$T")
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$rpmf" 2>&1)
rc=$?
[ $rc != 0 ] && [[ $out == *"no package owns"* ]] && [ "$(state_of "$T")" = "$S" ] &&
	cmp -s "$SRCKO" "$E1000" && pass overwrite-unowned-refused ||
	fail overwrite-unowned-refused "rc=$rc $out"
rm -rf "$T/lib/modules/$KVER/updates"
[ "$(state_of "$T")" = "$A" ] && pass overwrite-state || fail overwrite-state "state"

# the same writer makes an acceptable package: the refusals are about the paths
rpmf=$("$TXN_TOOL" mkrpm "$H" "$KVER" good "$SRCKO")
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$rpmf" 2>&1)
if [ $? = 0 ] && [ -f "$T/lib/modules/$KVER/updates/evil.ko" ]; then
	pass hostile-control-good
else
	fail hostile-control-good "$out"
fi
run_shim "$T" "$KMODCTL" --root "$T" remove evil-good -y >/dev/null 2>&1
[ "$(state_of "$T")" = "$A" ] && pass hostile-control-removed || fail hostile-control-removed "state"

# ---- an upgrade replaces the file; the old version's file goes ----
MII=$FIXTURES/full-54/lib/modules/$KVER/kernel/drivers/net/mii.ko
v1=$("$TXN_TOOL" mkrpm "$H" "$KVER" good "$SRCKO" 1)
v2=$("$TXN_TOOL" mkrpm "$H" "$KVER" good "$MII" 2)
run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$v1" >/dev/null 2>&1
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$v2" 2>&1)
rc=$?
evr=$(sqlite3 "$T/var/lib/kmodd/kmodd.db" "select evr from packages where name='evil-good'")
if [ $rc = 0 ] && cmp -s "$MII" "$T/lib/modules/$KVER/updates/evil.ko" && [ "$evr" = 2-1 ] &&
	indexes_like_depmod "$T" >/dev/null && "$KMODCTL" --root "$T" verify >/dev/null; then
	pass upgrade
else
	fail upgrade "rc=$rc evr=$evr $out"
fi
run_shim "$T" "$KMODCTL" --root "$T" remove evil-good -y >/dev/null 2>&1
[ "$(state_of "$T")" = "$A" ] && pass upgrade-removed || fail upgrade-removed "state"

# ---- verify finds differences: exit 6 ----
run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$(pkg e1000)" >/dev/null 2>&1
cp "$E1000" "$H/e1000.ko.saved"
printf 'x' >>"$E1000"
out=$("$KMODCTL" --root "$T" verify 2>&1)
rc=$?
[ $rc = 6 ] && [[ $out == *"content differs"* ]] && pass verify-changed-file || fail verify-changed-file "rc=$rc $out"
cp "$H/e1000.ko.saved" "$E1000"
cp "$T/lib/modules/$KVER/modules.alias" "$H/alias.saved"
echo "alias foo e1000" >>"$T/lib/modules/$KVER/modules.alias"
"$KMODCTL" --root "$T" verify >/dev/null 2>&1
rc=$?
[ $rc = 6 ] && pass verify-changed-index || fail verify-changed-index "rc=$rc"
cp "$H/alias.saved" "$T/lib/modules/$KVER/modules.alias"

# ---- blacklisted in the root's modprobe.d: installed, not loaded ----
mkdir -p "$T/etc/modprobe.d"
run_shim "$T" "$KMODCTL" --root "$T" remove e1000 -y >/dev/null 2>&1
echo "blacklist e1000" >"$T/etc/modprobe.d/test.conf"
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --load e1000 "$(pkg e1000)" 2>&1)
if [ $? = 0 ] && [ -f "$E1000" ] && [ ! -d "$T/sys/module/e1000" ] && [[ $out == *"e1000: blacklisted"* ]]; then
	pass load-blacklist-applied
else
	fail load-blacklist-applied "$out"
fi
run_shim "$T" "$KMODCTL" --root "$T" remove e1000 -y >/dev/null 2>&1
rm -rf "$T/etc"
[ "$(state_of "$T")" = "$A" ] && pass blacklist-removed || fail blacklist-removed "state"

# ---- signatures, when required: signed by a trusted key, or refused ----
if command -v gpg >/dev/null && command -v rpmsign >/dev/null; then
	G=$(mktmp)
	mkdir -m 700 "$G/home" "$G/other"
	gpg --homedir "$G/home" --batch --passphrase '' --quick-gen-key 'kmodd test <test@kmodd.invalid>' \
		ed25519 sign never >/dev/null 2>&1
	gpg --homedir "$G/other" --batch --passphrase '' --quick-gen-key 'other <other@kmodd.invalid>' \
		ed25519 sign never >/dev/null 2>&1
	gpg --homedir "$G/home" --armor --export test@kmodd.invalid >"$G/key.asc"
	gpg --homedir "$G/other" --armor --export other@kmodd.invalid >"$G/other.asc"
	cp "$(pkg e1000)" "$G/"
	S=$G/$(basename "$(pkg e1000)")
	rpmsign --addsign --define "__gpg $(command -v gpg)" --define "_gpg_name test@kmodd.invalid" \
		--define "_gpg_path $G/home" "$S" >/dev/null 2>&1 || fail signature-setup "rpmsign failed"
	out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --require-signature "$G/other.asc" "$S" 2>&1)
	rc=$?
	[ $rc != 0 ] && [[ $out == *"not trusted"* ]] && [ "$(state_of "$T")" = "$A" ] &&
		pass signature-untrusted-key-refused || fail signature-untrusted-key-refused "rc=$rc $out"
	out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --require-signature "$G/key.asc" "$(pkg e1000)" 2>&1)
	rc=$?
	[ $rc != 0 ] && [[ $out == *"not signed"* ]] && [ "$(state_of "$T")" = "$A" ] &&
		pass signature-unsigned-refused || fail signature-unsigned-refused "rc=$rc $out"
	out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --require-signature "$G/key.asc" "$S" 2>&1)
	rc=$?
	[ $rc = 0 ] && [ -f "$E1000" ] && pass signature-trusted-installed ||
		fail signature-trusted-installed "rc=$rc $out"
	run_shim "$T" "$KMODCTL" --root "$T" remove e1000 -y >/dev/null 2>&1
	[ "$(state_of "$T")" = "$A" ] && pass signature-removed || fail signature-removed "state"
else
	skip signatures "gpg or rpmsign missing"
fi

# ---- checksum mismatch and a corrupt package: refused before extraction ----
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --checksum "$(printf '0%.0s' {1..64})" \
	"$(pkg e1000)" 2>&1)
rc=$?
if [ $rc != 0 ] && [[ $out == *checksum* ]] && [ "$(state_of "$T")" = "$A" ] && no_leftovers "$T" >/dev/null; then
	pass checksum-mismatch
else
	fail checksum-mismatch "rc=$rc $out"
fi
C=$(mktmp)
cp "$(pkg e1000)" "$C/e1000-kmp-amd64-6.1.190-1.x86_64.rpm"
size=$(stat -c %s "$C/e1000-kmp-amd64-6.1.190-1.x86_64.rpm")
printf 'XXXXXXXX' | dd of="$C/e1000-kmp-amd64-6.1.190-1.x86_64.rpm" bs=1 seek=$((size - 5000)) conv=notrunc 2>/dev/null
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$C/e1000-kmp-amd64-6.1.190-1.x86_64.rpm" 2>&1)
rc=$?
if [ $rc != 0 ] && [[ $out == *digest* ]] && [ "$(state_of "$T")" = "$A" ] && no_leftovers "$T" >/dev/null; then
	pass corrupt-rpm-digest
else
	fail corrupt-rpm-digest "rc=$rc $out"
fi
printf 'garbage' | dd of="$C/e1000-kmp-amd64-6.1.190-1.x86_64.rpm" bs=1 seek=200 conv=notrunc 2>/dev/null
out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" --file "$(pkg e1000)" \
	"$C/e1000-kmp-amd64-6.1.190-1.x86_64.rpm" 2>&1)
rc=$?
if [ $rc != 0 ] && [ "$(state_of "$T")" = "$A" ] && no_leftovers "$T" >/dev/null; then
	pass corrupt-rpm-header
else
	fail corrupt-rpm-header "rc=$rc $out"
fi

# ---- full disks ----
if mount -t tmpfs -o size=64k tmpfs "$C" 2>/dev/null && umount "$C"; then
	U=$T/lib/modules/$KVER/updates
	mkdir -p "$U"
	mount -t tmpfs -o size=96k tmpfs "$U"
	MOUNTS+=("$U")
	S=$(state_of "$T")
	out=$(run_shim "$T" "$TXN_TOOL" install "$T" "$KVER" "$(pkg e1000)" 2>&1)
	rc=$?
	if [ $rc != 0 ] && [ "$(state_of "$T")" = "$S" ] && no_leftovers "$T" >/dev/null &&
		"$KMODCTL" --root "$T" verify >/dev/null 2>&1; then
		pass disk-full-modules
	else
		fail disk-full-modules "rc=$rc $out"
	fi
	umount "$U"
	rmdir "$U"
	for size in 160k 200k 240k 280k 320k 360k 600k; do
		V=$(mktmp)
		V=$V/root
		mkdir -p "$V"
		txn_root "$V"
		mkdir -p "$V/var"
		mount -t tmpfs -o size=$size tmpfs "$V/var"
		MOUNTS+=("$V/var")
		S=$(state_of "$V")
		out=$(run_shim "$V" "$TXN_TOOL" install "$V" "$KVER" "$(pkg e1000)" 2>&1)
		rc=$?
		after=$(state_of "$V")
		# a small disk fails somewhere (download, journal, database): the state before;
		# one that is large enough succeeds: the state after
		if { [ $rc != 0 ] && [ "$after" = "$S" ]; } || { [ $rc = 0 ] && [ -f "$V/lib/modules/$KVER/$E1000_REL" ]; }; then
			if no_leftovers "$V" >/dev/null && "$KMODCTL" --root "$V" verify >/dev/null 2>&1; then
				pass "disk-full-var-$size"
			else
				fail "disk-full-var-$size" "verify: $("$KMODCTL" --root "$V" verify 2>&1 | tail -n 3)"
			fi
		else
			fail "disk-full-var-$size" "rc=$rc $out"
		fi
		echo "# var $size: rc=$rc ${out##*txn-tool: }" | head -n 1 >&2
		umount "$V/var"
	done
else
	skip disk-full "cannot mount tmpfs here"
fi

finish
