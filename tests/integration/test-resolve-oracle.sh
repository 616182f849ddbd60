#!/usr/bin/env bash
# Equivalence oracle for `kmodctl install --modalias M`: over nginx, on copies of the minimal
# base-54 root, for about 110 device modaliases taken from the full-54 tree's modules.alias
# (pci, usb, virtio, acpi, hid, input, of, ...; wildcards made concrete) the KMPs installed are
# exactly those of the modules `modprobe -d <full-54 root> --show-depends M` names beyond the
# base, and the shim records exactly those modules loaded (base ones included). Five modaliases
# that match nothing: exit 3, a clear message, nothing written.
#
# Every modalias is a real install (-y) into a fresh copy of a template root that has the
# repository added and refreshed. ORACLE_SCALE (default 1) scales the number of modaliases.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"

KVER=$KVER54
FULL=$FIXTURES/full-54
command -v modprobe >/dev/null || { skip setup "modprobe not installed"; finish; }
command -v jq >/dev/null || { skip setup "jq not installed"; finish; }
[ -f "$SHIM" ] || { fail setup "$SHIM not built"; finish; }

repo=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD") || { fail setup "no cached repository"; finish; }
url=$(repo_serve "$repo") || { fail setup "nginx did not start"; finish; }

work=$(mktmp)
tmpl=$work/template
mkdir -p "$tmpl" "$work/modprobe.d"
fixture_copy base-54 "$tmpl"
# of the kernel headers only Module.symvers matters here; fewer files make copies cheap
find "$tmpl/usr/src" -mindepth 2 -maxdepth 2 ! -name Module.symvers -exec rm -rf {} +
"$KMODCTL" --root "$tmpl" repo add kmp "$url" --no-gpgcheck >/dev/null &&
	"$KMODCTL" --root "$tmpl" repo refresh >/dev/null ||
	{ fail setup "repo add/refresh failed"; finish; }
# the kernel's solvable cache (var/cache/kmodd/system/) made once, shared by the copies
"$KMODCTL" --root "$tmpl" install --dry-run e1000 >/dev/null 2>&1

base=$work/base.list
awk -F: '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n); print n }' \
	"$tmpl/lib/modules/$KVER/modules.dep" | sort -u >"$base"

{
	# qemu's e1000 NIC as the VM tier sees it, then the picked ones
	echo "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"
	python3 "$SRC/tests/integration/pick-modaliases.py" "$FULL/lib/modules/$KVER/modules.alias" \
		"${ORACLE_SCALE:-1}"
} >"$work/aliases"

# a fresh root: the template with its own index files (the transaction replaces them)
fresh_root() { # dest
	rm -rf "$1"
	mkdir -p "$1"
	cp -al "$tmpl/." "$1/"
	local f
	for f in "$1"/lib/modules/$KVER/modules.*; do
		cp --remove-destination "$tmpl/${f#"$1"/}" "$f"
	done
}

# modprobe's answer on the full tree (host modprobe.d left out): module names, in file form
show_depends() { # modalias
	modprobe -C "$work/modprobe.d" -d "$FULL" -S "$KVER" --show-depends "$1" 2>/dev/null |
		awk '$1 == "insmod" { n = $2; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); print n }'
}

start=$(date +%s.%N)
n=0
matched=0
while read -r M; do
	mods=$(show_depends "$M")
	[ -n "$mods" ] || continue # modprobe finds only built-ins, or nothing
	n=$((n + 1))
	want_kmps=$(for m in $mods; do grep -qx "${m//-/_}" "$base" || echo "$m-kmp-amd64"; done | sort -u)
	want_loads=$(for m in $mods; do echo "${m//-/_}"; done | sort -u)

	R=$work/root
	fresh_root "$R"
	out=$(LD_PRELOAD=$SHIM KMODD_SHIM_ROOT=$R \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$KMODCTL" --root "$R" install -y --json --modalias "$M" 2>"$work/err")
	rc=$?
	got_kmps=$(printf '%s' "$out" | jq -r '.install[]?.name' 2>/dev/null | sort -u)
	got_loads=$(awk '$1 == "load" { print $2 }' "$R/sys/module/.kmodd-shim.log" 2>/dev/null |
		tr - _ | sort -u)
	if [ $rc -ne 0 ]; then
		fail "install:$M" "exit $rc: $(tail -n 3 "$work/err" | tr '\n' ' ')"
	elif [ "$want_kmps" != "$got_kmps" ]; then
		fail "install:$M" "modprobe wants [$(echo $want_kmps)], kmodctl installed [$(echo $got_kmps)]"
	elif [ -n "$want_kmps" ] && [ "$want_loads" != "$got_loads" ]; then
		fail "install:$M" "modprobe loads [$(echo $want_loads)], the shim recorded [$(echo $got_loads)]"
	elif [ -z "$want_kmps" ] && [ "$(printf '%s' "$out" | jq -r .result)" != nothing-to-do ]; then
		fail "install:$M" "served by the base, but the result is not nothing-to-do"
	else
		pass "install:$M"
		[ -n "$want_kmps" ] && matched=$((matched + 1))
	fi
done <"$work/aliases"
end=$(date +%s.%N)
echo "# $n modaliases ($matched with KMPs to install) in $(echo "$end - $start" | bc) s"
want=$(awk -v s="${ORACLE_SCALE:-1}" 'BEGIN { w = int(100 * s); print (w > 100 ? 100 : w) }')
if [ "$n" -ge "$want" ]; then
	pass "count"
else
	fail "count" "only $n modaliases with a modprobe answer (want >= $want)"
fi

# nothing matches: exit 3, a message naming the modalias, nothing written
nomatch=(
	"pci:v0000FFF0d0000FFF0sv0000FFF0sd0000FFF0bcFEscFEiFE"
	"usb:v0001p0001d0001dcFEdscFEdpFEicFDiscFDipFDin00"
	"virtio:d0000FFF0v0000FFF0"
	"acpi:KMDD0000:"
	"nosuchbus:kmodd-test"
)
R=$work/nomatch
fresh_root "$R"
for M in "${nomatch[@]}"; do
	if [ -n "$(show_depends "$M")" ]; then
		skip "nomatch:$M" "modprobe finds a module for it"
		continue
	fi
	# state, not caches: var/cache/kmodd may get the kernel's solvable cache
	before=$(cd "$R" && find . -path ./var/cache/kmodd -prune -o -printf '%p %s %T@\n' | sort | md5sum)
	out=$("$KMODCTL" --root "$R" install -y --modalias "$M" 2>&1)
	rc=$?
	after=$(cd "$R" && find . -path ./var/cache/kmodd -prune -o -printf '%p %s %T@\n' | sort | md5sum)
	if [ $rc -ne 3 ]; then
		fail "nomatch:$M" "exit $rc, want 3: $out"
	elif ! printf '%s' "$out" | grep -q "nothing provides modalias $M"; then
		fail "nomatch:$M" "message does not name it: $out"
	elif [ "$before" != "$after" ] || [ -e "$R/var/lib/kmodd/kmodd.db" ]; then
		fail "nomatch:$M" "the root changed"
	else
		pass "nomatch:$M"
	fi
done

# the JSON of a no-match names the problem too
out=$("$KMODCTL" --root "$R" install --dry-run --json --modalias "nosuchbus:kmodd-test" 2>/dev/null)
check nomatch-json test "$(printf '%s' "$out" | jq -r .result)" = no-match

finish
