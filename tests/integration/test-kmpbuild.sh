#!/usr/bin/env bash
# kmpbuild on the 6.1.0-54 fixture: one KMP per non-base module plus kernel-amd64; for 50
# random KMPs the rpm dependencies equal what modinfo, modprobe --dump-modversions,
# Module.symvers and modules.dep say; rpm -K passes on every package; payloads hold exactly
# the module. The repository comes from kmpbuild/cached-repo.sh (built once per binary).
# SEED=N picks the same 50 modules again.
source "$(dirname "$0")/lib.sh"

T=$(mktmp)
root=$FIXTURES/full-54
moddir=$root/lib/modules/$KVER54
symvers=$root/usr/src/linux-headers-$KVER54/Module.symvers
fl=amd64

t0=$(date +%s.%N)
if ! repo=$("$SRC/kmpbuild/cached-repo.sh" full-54 "$KMPBUILD" 2>"$T/build.err"); then
	fail build "$(tail -n 3 "$T/build.err" | tr '\n' ' ')"
	finish
fi
pass build
echo "# repository $repo ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s incl. cache lookup)"

# the kernel package version, independently of kmpbuild: "Debian 6.1.190-1" in UTS_VERSION
debver=$(grep -o 'Debian [^ ]*' "$root/usr/src/linux-headers-$KVER54/include/generated/utsversion.h" | head -n 1 | cut -d' ' -f2)
ver=${debver%-*}
rel=${debver##*-}

# base modules: the base-54 fixture's modules.dep is the base closure
cut -d: -f1 "$FIXTURES/base-54/lib/modules/$KVER54/modules.dep" | sort >"$T/base.paths"
cut -d: -f1 "$moddir/modules.dep" | sort >"$T/all.paths"
comm -23 "$T/all.paths" "$T/base.paths" >"$T/kmp.paths"

# "0x0000abcd" -> "abcd": the canonical CRC form (%x), in awk without strtonum (mawk)
HEX='function h(s) { sub(/^0[xX]/, "", s); sub(/^0+/, "", s); s = tolower(s); return s == "" ? "0" : s }'

stem() { local b=${1##*/}; echo "${b%%.ko*}"; }
kname() { stem "$1" | tr - _; }

# the shipped default base list is the fixtures' minimal base
check default-base-list cmp "$SRC/kmpbuild/base-modules.list" "$SRC/tests/fixtures/base-modules.list"

# 1. one package per non-base module, plus the base package
ls "$repo/x86_64" | sort >"$T/files"
while read -r p; do echo "$(stem "$p")-kmp-$fl-$ver-$rel.x86_64.rpm"; done <"$T/kmp.paths" >"$T/want.files"
echo "kernel-$fl-$ver-$rel.x86_64.rpm" >>"$T/want.files"
sort -o "$T/want.files" "$T/want.files"
if diff -q "$T/want.files" "$T/files" >/dev/null; then
	pass one-kmp-per-module
else
	fail one-kmp-per-module "$(diff "$T/want.files" "$T/files" | head -n 5 | tr '\n' ' ')"
fi

# 2. rpm -K over every package, one batch
if out=$(cd "$repo/x86_64" && rpm -K -- *.rpm 2>&1) && ! grep -qv 'digests OK$' <<<"$out"; then
	pass "rpm-K-all($(wc -l <<<"$out"))"
else
	fail rpm-K-all "$(grep -v 'digests OK$' <<<"$out" | head -n 3 | tr '\n' ' ')"
fi

# 3. 50 random KMPs against modinfo / modprobe --dump-modversions / Module.symvers
SEED=${SEED:-$RANDOM}
echo "# seed $SEED"
shuf -n 50 --random-source=<(yes "$SEED") "$T/kmp.paths" >"$T/sample"
# base kmod() names
while read -r p; do kname "$p"; done <"$T/base.paths" | sort >"$T/base.names"

bad_prov=0 bad_req=0 bad_supp=0 bad_payload=0 bad_rec=0 n=0
while read -r p; do
	n=$((n + 1))
	f=$moddir/$p
	s=$(stem "$p")
	name=$(kname "$p")
	pkg=$repo/x86_64/$s-kmp-$fl-$ver-$rel.x86_64.rpm
	symmod=${p#kernel/}
	symmod=${symmod%%.ko*}

	# exports: Module.symvers rows of this module
	awk -v m="$symmod" -F'\t' "$HEX"' $3==m {print $2, h($1)}' "$symvers" | sort >"$T/exp"
	{
		echo "$s-kmp-$fl = $ver-$rel"
		echo "$s-kmp-$fl(x86-64) = $ver-$rel"
		echo "kmod($name.ko)"
		awk -v fl=$fl '{printf "ksym(%s:%s) = %s\n", fl, $1, $2}' "$T/exp"
	} | sort >"$T/prov.want"
	rpm -qp --provides "$pkg" | sort >"$T/prov.got"
	if ! diff -q "$T/prov.want" "$T/prov.got" >/dev/null; then
		bad_prov=$((bad_prov + 1))
		[ $bad_prov -le 2 ] && echo "# provides $s: $(diff "$T/prov.want" "$T/prov.got" | head -n 4 | tr '\n' ' ')"
	fi

	# requires: __versions minus own exports, plus modules.dep (base ones as kmod())
	{
		modprobe --dump-modversions "$f" | awk "$HEX"' {print $2, h($1)}' | sort -u |
			join -v 1 - "$T/exp" |
			awk -v fl=$fl '{printf "ksym(%s:%s) = %s\n", fl, $1, $2}'
		grep "^$p:" "$moddir/modules.dep" | cut -d: -f2 | tr ' ' '\n' | sed '/^$/d' |
			while read -r d; do
				if grep -qx "$d" "$T/base.paths"; then
					echo "kmod($(kname "$d").ko)"
				else
					echo "$(stem "$d")-kmp-$fl"
				fi
			done
	} | sort -u >"$T/req.want"
	rpm -qp --requires "$pkg" | grep -v '^rpmlib(' | sort >"$T/req.got"
	if ! diff -q "$T/req.want" "$T/req.got" >/dev/null; then
		bad_req=$((bad_req + 1))
		[ $bad_req -le 2 ] && echo "# requires $s: $(diff "$T/req.want" "$T/req.got" | head -n 4 | tr '\n' ' ')"
	fi

	# supplements: one modalias() per alias
	modinfo -F alias "$f" | sed "s/^/modalias(kernel-$fl:/; s/\$/)/" | sort -u >"$T/supp.want"
	rpm -qp --supplements "$pkg" | sort >"$T/supp.got"
	if ! diff -q "$T/supp.want" "$T/supp.got" >/dev/null; then
		bad_supp=$((bad_supp + 1))
		[ $bad_supp -le 2 ] && echo "# supplements $s: $(diff "$T/supp.want" "$T/supp.got" | head -n 4 | tr '\n' ' ')"
	fi

	# recommends: the modules named by softdeps
	modinfo -F softdep "$f" | tr ' ' '\n' | grep -v -e ':$' -e '^$' | tr - _ |
		sed 's/.*/kmod(&.ko)/' | sort -u >"$T/rec.want"
	rpm -qp --recommends "$pkg" | sort >"$T/rec.got"
	diff -q "$T/rec.want" "$T/rec.got" >/dev/null || bad_rec=$((bad_rec + 1))

	# payload: exactly the module, under updates/
	want="./lib/modules/$KVER54/updates/${p#kernel/}"
	got=$(rpm2cpio "$pkg" | cpio -t --quiet 2>/dev/null)
	if [ "$got" != "$want" ]; then
		bad_payload=$((bad_payload + 1))
		[ $bad_payload -le 2 ] && echo "# payload $s: '$got' != '$want'"
	elif ! rpm2cpio "$pkg" | cpio -i --quiet --to-stdout 2>/dev/null | cmp -s - "$f"; then
		bad_payload=$((bad_payload + 1))
		echo "# payload $s: content differs from $f"
	fi
done <"$T/sample"

for c in prov:provides req:requires supp:supplements rec:recommends payload:payload; do
	v=bad_${c%%:*}
	if [ "${!v}" -eq 0 ]; then
		pass "${c#*:}-$n-random"
	else
		fail "${c#*:}-$n-random" "${!v} of $n packages differ (seed $SEED)"
	fi
done

# 4. the base package: vmlinux ksyms, kernel-uname-r, kmod() of the base set; payload
base=$repo/x86_64/kernel-$fl-$ver-$rel.x86_64.rpm
rpm -qp --provides "$base" | sort >"$T/bprov"
awk -F'\t' -v fl=$fl "$HEX"' $3=="vmlinux" {printf "ksym(%s:%s) = %s\n", fl, $2, h($1)}' "$symvers" | sort >"$T/vmlinux"
missing=$(comm -23 "$T/vmlinux" "$T/bprov" | wc -l)
if [ "$missing" -eq 0 ] && [ "$(wc -l <"$T/vmlinux")" -gt 10000 ]; then
	pass "base-vmlinux-ksyms($(wc -l <"$T/vmlinux"))"
else
	fail base-vmlinux-ksyms "$missing of $(wc -l <"$T/vmlinux") vmlinux exports not provided"
fi
check base-uname-r grep -qx "kernel-uname-r = $KVER54" "$T/bprov"
sed 's/.*/kmod(&.ko)/' "$T/base.names" >"$T/bkmod.want"
grep '^kmod(' "$T/bprov" | sort >"$T/bkmod.got"
check base-kmod diff "$T/bkmod.want" "$T/bkmod.got"
{
	sed "s|^|./lib/modules/$KVER54/|" "$T/base.paths"
	(cd "$moddir" && ls -1 modules.builtin* modules.order) | sed "s|^|./lib/modules/$KVER54/|"
} | sort >"$T/bpay.want"
rpm2cpio "$base" | cpio -t --quiet 2>/dev/null | sort >"$T/bpay.got"
check base-payload diff "$T/bpay.want" "$T/bpay.got"

finish
