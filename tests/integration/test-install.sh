#!/usr/bin/env bash
# kmodctl ensure, install by module and package name, scan, search, what-provides and list,
# over nginx on copies of the minimal base-54 root; loads through the shim.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"

KVER=$KVER54
command -v jq >/dev/null || { skip setup "jq not installed"; finish; }
[ -f "$SHIM" ] || { fail setup "$SHIM not built"; finish; }
repo=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD") || { fail setup "no cached repository"; finish; }
url=$(repo_serve "$repo") || { fail setup "nginx did not start"; finish; }

work=$(mktmp)
tmpl=$work/template
mkdir -p "$tmpl" "$work/modprobe.d"
fixture_copy base-54 "$tmpl"
find "$tmpl/usr/src" -mindepth 2 -maxdepth 2 ! -name Module.symvers -exec rm -rf {} +
mkdir -p "$tmpl/usr/lib/kmodd/policies"
cp -r "$SRC/policies/sets" "$tmpl/usr/lib/kmodd/policies/"
"$KMODCTL" --root "$tmpl" repo add kmp "$url" --no-gpgcheck >/dev/null &&
	"$KMODCTL" --root "$tmpl" repo refresh >/dev/null ||
	{ fail setup "repo add/refresh failed"; finish; }
# the kernel's solvable cache (var/cache/kmodd/system/) made once, shared by the copies
"$KMODCTL" --root "$tmpl" install --dry-run e1000 >/dev/null 2>&1

fresh_root() { # dest
	rm -rf "$1"
	mkdir -p "$1"
	cp -al "$tmpl/." "$1/"
	local f
	for f in "$1"/lib/modules/$KVER/modules.*; do
		cp --remove-destination "$tmpl/${f#"$1"/}" "$f"
	done
}
kmodctl_shim() { # root args...
	local r=$1
	shift
	LD_PRELOAD=$SHIM KMODD_SHIM_ROOT=$r \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$KMODCTL" --root "$r" "$@"
}

# --- ensure netfilter -----------------------------------------------------------------------
R=$work/nf
fresh_root "$R"
out=$("$KMODCTL" --root "$R" ensure netfilter --dry-run --json 2>&1)
n=$(printf '%s' "$out" | jq '.install | length' 2>/dev/null)
names=$(printf '%s' "$out" | jq -r '.install[].name' 2>/dev/null)
if [ "${n:-0}" -ge 150 ] && printf '%s\n' "$names" | grep -qx nft_ct-kmp-amd64 &&
	printf '%s\n' "$names" | grep -qx xt_conntrack-kmp-amd64 &&
	printf '%s\n' "$names" | grep -qx ip6table_filter-kmp-amd64 &&
	printf '%s\n' "$names" | grep -qx nf_conntrack-kmp-amd64 &&
	! printf '%s\n' "$names" | grep -qx e1000-kmp-amd64; then
	pass ensure-dry-run
else
	fail ensure-dry-run "$n packages: $(printf '%s' "$out" | head -c 300)"
fi
check ensure-dry-run-wrote-nothing test ! -e "$R/var/lib/kmodd/kmodd.db" -a ! -d "$R/lib/modules/$KVER/updates"

t0=$(date +%s.%N)
out=$(kmodctl_shim "$R" ensure netfilter -y --json 2>&1)
rc=$?
t1=$(date +%s.%N)
echo "# ensure netfilter: $(printf '%s' "$out" | jq '.installed | length' 2>/dev/null) packages in $(echo "$t1 - $t0" | bc) s"
check ensure-install test $rc = 0 -a "$(printf '%s' "$out" | jq '.installed | length' 2>/dev/null)" = "$n"
# a set is installed, not loaded
check ensure-loads-nothing test ! -s "$R/sys/module/.kmodd-shim.log"
sd=$(modprobe -C "$work/modprobe.d" -d "$R" -S "$KVER" --show-depends nft_ct 2>&1)
if [ $? = 0 ] && printf '%s\n' "$sd" | grep -q "/updates/net/netfilter/nft_ct.ko" &&
	! printf '%s\n' "$sd" | awk '$1 == "insmod" { print $2 }' | grep -v "^$R/" | grep -q .; then
	missing=$(printf '%s\n' "$sd" | awk '$1 == "insmod" { print $2 }' | while read -r f; do [ -f "$f" ] || echo "$f"; done)
	if [ -z "$missing" ]; then pass ensure-modprobe-nft_ct; else fail ensure-modprobe-nft_ct "missing: $missing"; fi
else
	fail ensure-modprobe-nft_ct "$sd"
fi
check ensure-indexes-agree "$KMODCTL" --root "$R" depmod --verify "$KVER"
before=$(cd "$R" && find . \( -path ./var/lib/kmodd -o -path ./var/cache/kmodd \) -prune -o -printf '%p %s %T@\n' | sort | md5sum)
out=$(kmodctl_shim "$R" ensure netfilter -y --json 2>&1)
rc=$?
after=$(cd "$R" && find . \( -path ./var/lib/kmodd -o -path ./var/cache/kmodd \) -prune -o -printf '%p %s %T@\n' | sort | md5sum)
if [ $rc = 0 ] && [ "$(printf '%s' "$out" | jq -r .result)" = nothing-to-do ] && [ "$before" = "$after" ]; then
	pass ensure-second-run-does-nothing
else
	fail ensure-second-run-does-nothing "exit $rc, result $(printf '%s' "$out" | jq -r .result), tree $([ "$before" = "$after" ] && echo unchanged || echo changed)"
fi
check ensure-history-once test "$("$KMODCTL" --root "$R" history --json 2>/dev/null | jq 'length')" = 1

# --- sets: unknown, /etc override, --list ----------------------------------------------------
R=$work/sets
fresh_root "$R"
"$KMODCTL" --root "$R" ensure no-such-set >/dev/null 2>&1
check ensure-unknown-set-exit-3 test $? = 3
mkdir -p "$R/etc/kmodd/policies/sets"
printf '[Set]\nName=netfilter\nDescription=local\nModules=nft_ct\n' >"$R/etc/kmodd/policies/sets/netfilter.set"
got=$("$KMODCTL" --root "$R" ensure netfilter --dry-run --json 2>/dev/null | jq -r '.install[].name' | sort | tr '\n' ' ')
check ensure-etc-overrides test "$got" = "libcrc32c-kmp-amd64 nf_conntrack-kmp-amd64 nf_defrag_ipv4-kmp-amd64 nf_defrag_ipv6-kmp-amd64 nf_tables-kmp-amd64 nfnetlink-kmp-amd64 nft_ct-kmp-amd64 "
check ensure-list test "$("$KMODCTL" --root "$R" ensure --list --json | jq -r '.[].name' | tr '\n' ' ')" = "ethernet kvm netfilter nfs usb-storage "
for s in ethernet kvm nfs usb-storage; do
	n=$("$KMODCTL" --root "$R" ensure "$s" --dry-run --json 2>/dev/null | jq '.install | length')
	check "ensure-$s-resolves" test "${n:-0}" -ge 1
done

# --- install by module and by package name ----------------------------------------------------
R=$work/byname
fresh_root "$R"
out=$(kmodctl_shim "$R" install e1000 -y --json 2>&1)
check install-module test "$(printf '%s' "$out" | jq -r '[.installed[]] | join(" ")')" = "e1000-kmp-amd64-6.1.190-1.x86_64"
check install-module-loaded grep -qx "load e1000" "$R/sys/module/.kmodd-shim.log"
out=$(kmodctl_shim "$R" install r8152-kmp-amd64 -y --json 2>&1)
check install-package test "$(printf '%s' "$out" | jq -r '.install | map(.name) | sort | join(" ")')" = "mii-kmp-amd64 r8152-kmp-amd64 usb-common-kmp-amd64 usbcore-kmp-amd64"
out=$("$KMODCTL" --root "$R" install e1000 -y --json 2>&1)
check install-again-nothing test "$(printf '%s' "$out" | jq -r .result)" = nothing-to-do
"$KMODCTL" --root "$R" install no_such_module -y >/dev/null 2>&1
check install-unknown-module-exit-3 test $? = 3
check why-user test "$("$KMODCTL" --root "$R" list --installed --json | jq -r '.[] | select(.name == "usbcore-kmp-amd64") | .reason')" = dependency

# --- scan: devices under <root>/sys without a driver ----------------------------------------
R=$work/scan
fresh_root "$R"
d=$R/sys/devices/pci0000:00
mkdir -p "$d/0000:00:03.0" "$d/0000:00:04.0" "$d/0000:00:05.0" "$R/sys/bus/pci/drivers/virtio-pci"
echo "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00" >"$d/0000:00:03.0/modalias"
echo "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00" >"$d/0000:00:04.0/modalias"
ln -s ../../../bus/pci/drivers/virtio-pci "$d/0000:00:04.0/driver"
echo "pci:v0000FFF0d0000FFF0sv0000FFF0sd0000FFF0bcFEscFEiFE" >"$d/0000:00:05.0/modalias"
out=$("$KMODCTL" --root "$R" scan --dry-run --json 2>/dev/null)
check scan-dry-run test "$(printf '%s' "$out" | jq -r '.install | map(.name) | join(" ")')" = e1000-kmp-amd64
out=$(kmodctl_shim "$R" scan -y --json 2>"$work/scan.err")
check scan-install test "$(printf '%s' "$out" | jq -r '.installed | join(" ")')" = "e1000-kmp-amd64-6.1.190-1.x86_64"
check scan-loaded grep -qx "load e1000" "$R/sys/module/.kmodd-shim.log"
check scan-reports-unserved grep -q "pci:v0000FFF0d0000FFF0" "$work/scan.err"
check scan-hotplug-reason test "$("$KMODCTL" --root "$R" list --installed --json | jq -r '.[0].reason')" = hotplug
out=$("$KMODCTL" --root "$R" scan -y --json 2>/dev/null)
check scan-second-run-nothing test "$(printf '%s' "$out" | jq -r .result)" = nothing-to-do

# --- a problem in plain words: the kernel exports a symbol with another CRC ------------------
R=$work/kabi
fresh_root "$R"
sv=$(ls "$R"/usr/src/linux-headers-*/Module.symvers)
grep -v "	__pci_register_driver	" "$sv" >"$work/symvers"
printf '0x12345678\t__pci_register_driver\tvmlinux\tEXPORT_SYMBOL\t\n' >>"$work/symvers"
rm -f "$sv" && cp "$work/symvers" "$sv"
out=$("$KMODCTL" --root "$R" install -y --modalias pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00 2>&1)
rc=$?
check problem-exit-4 test $rc = 4
check problem-plain-words grep -qF "no repository offers ksym(amd64:__pci_register_driver) = f6dc4f1 needed by e1000-kmp-amd64-6.1.190-1.x86_64 for kernel $KVER (the kernel exports it with CRC 12345678" <<<"$out"
check problem-nothing-written test ! -e "$R/var/lib/kmodd/kmodd.db" -a ! -d "$R/lib/modules/$KVER/updates"
out=$("$KMODCTL" --root "$R" install --dry-run --json --modalias pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00 2>/dev/null)
check problem-json test "$(printf '%s' "$out" | jq -r '.result + " " + (.problems | length | tostring)')" = "unsatisfiable 1"

# a set goes ahead without its unsatisfiable members, naming them
out=$("$KMODCTL" --root "$R" ensure ethernet --dry-run --json 2>"$work/ensure.err")
rc=$?
if [ $rc = 0 ] && [ "$(printf '%s' "$out" | jq '.install | length')" -ge 1 ] &&
	! printf '%s' "$out" | jq -r '.install[].name' | grep -qx e1000-kmp-amd64 &&
	grep -q "Leaving out e1000: no repository offers ksym(amd64:__pci_register_driver)" "$work/ensure.err"; then
	pass ensure-leaves-out-unsatisfiable
else
	fail ensure-leaves-out-unsatisfiable "exit $rc: $(head -c 300 "$work/ensure.err")"
fi

# --- search, what-provides, list ---------------------------------------------------------------
R=$work/byname
check search-e1000 sh -c "'$KMODCTL' --root '$R' search e1000 --json | jq -e 'map(.name) | index(\"e1000e-kmp-amd64\") != null' >/dev/null"
"$KMODCTL" --root "$R" search zzz-no-such-thing >/dev/null 2>&1
check search-none-exit-3 test $? = 3
check what-provides-kmod test "$("$KMODCTL" --root "$work/sets" what-provides 'kmod(e1000.ko)' --json | jq -r 'map(.name) | sort | unique | join(" ")')" = e1000-kmp-amd64
check what-provides-modalias test "$("$KMODCTL" --root "$R" what-provides --modalias pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00 --json | jq -r 'map(.name) | join(" ")')" = e1000-kmp-amd64
check what-provides-installed test "$("$KMODCTL" --root "$R" what-provides 'kmod(usbcore.ko)' --json | jq -r 'map(select(.installed)) | length')" -ge 1
n=$("$KMODCTL" --root "$R" list --json 2>/dev/null | jq length)
check list-available test "${n:-0}" -ge 3900

finish
