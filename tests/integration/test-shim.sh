#!/usr/bin/env bash
# shellcheck disable=SC2016 # the conditions given to expect are eval'd there
# The module-syscall shim (tests/integration/shim) under Debian's kmod tools and shim-probe:
# loads and unloads are recorded below a fixture root, lookups of /sys/module and
# /proc/modules see that root, failures are injected, everything else is untouched.
# Runs once with $BUILD's shim and once more with $BUILD_SAN's (default build-san) when that
# build has one.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PATH=$PATH:/usr/sbin:/sbin
MODDIR=lib/modules/$KVER54
E1000=kernel/drivers/net/ethernet/intel/e1000/e1000.ko
VLAN8021Q=kernel/net/8021q/8021q.ko
EXTRA_MODULES="$E1000 $VLAN8021Q kernel/net/802/garp.ko kernel/net/802/stp.ko
	kernel/net/802/mrp.ko kernel/net/llc/llc.ko"

for tool in modprobe insmod rmmod lsmod depmod xz readelf; do
	if ! command -v "$tool" >/dev/null; then
		skip all "$tool not installed (scripts/deps.sh)"
		finish
	fi
done

# base-54 plus e1000 and 8021q (with its dependencies garp, stp, mrp, llc), depmod run.
make_root() { # dest
	local m
	fixture_copy base-54 "$1" || return 1
	for m in $EXTRA_MODULES; do
		mkdir -p "$1/$MODDIR/$(dirname "$m")"
		[ -e "$1/$MODDIR/$m" ] && continue
		cp -l "$FIXTURES/full-54/$MODDIR/$m" "$1/$MODDIR/$m" 2>/dev/null ||
			cp "$FIXTURES/full-54/$MODDIR/$m" "$1/$MODDIR/$m" || return 1
	done
	depmod -b "$1" "$KVER54"
}

# The variables below are set by scenario() for the helpers.
shim='' probe='' root=''
under_shim() { LD_PRELOAD=$shim KMODD_SHIM_ROOT=$root "$@"; }
mp() { under_shim modprobe -d "$root" -S "$KVER54" "$@"; }
loaded() { [ "$(cat "$root/sys/module/$1/initstate" 2>/dev/null)" = live ]; }
gone() { [ ! -e "$root/sys/module/$1" ] && ! grep -s -q "^$1 " "$root/proc/modules"; }
last_log() { tail -n 1 "$root/sys/module/.kmodd-shim.log" 2>/dev/null; }

expect() { # name cmd... : PASS when cmd succeeds, else FAIL with $why
	local name=$1
	shift
	if "$@" 2>/dev/null; then
		pass "$name"
	else
		fail "$name" "$(printf '%s' "${why:-}" | tr '\n' ' ')"
	fi
}

scenario() { # prefix shim probe
	local p=$1 out rc n1 n2 why
	shim=$2 probe=$3
	root=$(mktmp)
	if ! out=$(make_root "$root" 2>&1); then
		fail "${p}setup" "cannot build the fixture root: $out"
		return
	fi

	if readelf -d "$shim" | grep -q -E 'NEEDED.*(asan|ubsan)'; then
		fail "${p}no-sanitizer" "$shim links a sanitizer runtime (-fno-sanitize=all missing?)"
	else
		pass "${p}no-sanitizer"
	fi

	# modprobe loads through syscall(__NR_finit_module)
	out=$(mp e1000 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}modprobe-load" eval '[ $rc = 0 ] && loaded e1000 &&
		[ "$(cat "$root/sys/module/e1000/refcnt")" = 0 ] &&
		grep -q -E "^e1000 [0-9]+ 0 - Live 0x[0-9a-f]+\$" "$root/proc/modules" &&
		[ "$(last_log)" = "load e1000" ]'

	out=$(under_shim lsmod 2>&1)
	why=$out
	expect "${p}lsmod" eval 'printf "%s\n" "$out" | grep -q -E "^e1000 +[0-9]+ +0\$"'

	why="stat: $(under_shim "$probe" stat /sys/module/e1000 2>&1)"
	expect "${p}redirect" eval '[ "$(under_shim "$probe" stat /sys/module/e1000)" = directory ] &&
		[ "$(under_shim "$probe" cat /sys/module/e1000/initstate)" = live ] &&
		under_shim cat /proc/modules | grep -q "^e1000 " &&
		under_shim ls /sys/module | grep -q -x e1000'

	n1=$(wc -l 2>/dev/null <"$root/sys/module/.kmodd-shim.log")
	out=$(mp e1000 2>&1); rc=$?
	n2=$(wc -l 2>/dev/null <"$root/sys/module/.kmodd-shim.log")
	why="rc=$rc $out; log grew from $n1 to $n2 lines"
	expect "${p}modprobe-again-noop" eval '[ $rc = 0 ] && [ "$n1" = "$n2" ] && loaded e1000'

	out=$(under_shim insmod "$root/$MODDIR/$E1000" 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}insmod-eexist" eval '[ $rc != 0 ] && [[ $out == *"File exists"* ]] &&
		[ "$(last_log)" = "fail e1000 EEXIST" ] && loaded e1000'

	out=$(mp 8021q 2>&1); rc=$?
	why="rc=$rc $out; $(under_shim lsmod 2>&1 | tr '\n' ';')"
	expect "${p}modprobe-deps" eval '[ $rc = 0 ] && loaded 8021q && loaded garp && loaded stp &&
		loaded mrp && loaded llc && [ "$(cat "$root/sys/module/garp/refcnt")" = 1 ] &&
		[ "$(cat "$root/sys/module/llc/refcnt")" = 2 ] &&
		[ -L "$root/sys/module/garp/holders/8021q" ] &&
		grep -q -E "^garp [0-9]+ 1 8021q, Live " "$root/proc/modules" &&
		under_shim lsmod | grep -q -E "^garp +[0-9]+ +1 8021q\$"'

	out=$(under_shim rmmod garp 2>&1); rc=$?
	why="rc=$rc $out"
	expect "${p}rmmod-in-use" eval '[ $rc != 0 ] && [[ $out == *"in use"* ]] && loaded garp'

	# kmod 30 removes the dependencies whose refcnt is 0 when it gets to them, like
	# with a real kernel; stp and llc are still held by garp at that point.
	out=$(mp -r 8021q 2>&1); rc=$?
	why="rc=$rc $out; $(under_shim lsmod 2>&1 | tr '\n' ';')"
	expect "${p}modprobe-remove-deps" eval '[ $rc = 0 ] && gone 8021q && gone garp && gone mrp &&
		[ ! -e "$root/sys/module/llc/holders/garp" ] &&
		under_shim rmmod stp llc && gone stp && gone llc'

	out=$(under_shim rmmod e1000 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}rmmod" eval '[ $rc = 0 ] && gone e1000 && [ "$(last_log)" = "unload e1000" ] &&
		[ ! -s "$root/proc/modules" ]'

	out=$(mp e1000 2>&1 && mp -r e1000 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}modprobe-remove" eval '[ $rc = 0 ] && gone e1000 && [ "$(last_log)" = "unload e1000" ]'

	out=$(KMODD_SHIM_FAIL=e1000:ENODEV mp e1000 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}fail-injection" eval '[ $rc != 0 ] && [[ $out == *"No such device"* ]] &&
		gone e1000 && [ "$(last_log)" = "fail e1000 ENODEV" ]'

	out=$(KMODD_SHIM_FAIL=snd_dummy:EIO,e1000:5 mp e1000 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}fail-injection-number" eval '[ $rc != 0 ] && [[ $out == *"Input/output error"* ]] &&
		gone e1000 && [ "$(last_log)" = "fail e1000 EIO" ]'

	echo "not a module" >"$root/bogus.ko"
	out=$(under_shim insmod "$root/bogus.ko" 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}insmod-not-elf" eval '[ $rc != 0 ] && [[ $out == *"Invalid module format"* ]] &&
		[ "$(last_log)" = "fail - ENOEXEC" ] &&
		[ "$(under_shim "$probe" syscall-init "$root/bogus.ko" 2>/dev/null)" = ENOEXEC ]'

	# libkmod 30 decompresses a module itself and hands the image to init_module()
	xz -c "$root/$MODDIR/$E1000" >"$root/e1000.ko.xz"
	out=$(under_shim insmod "$root/e1000.ko.xz" 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}insmod-image" eval '[ $rc = 0 ] && loaded e1000 &&
		under_shim "$probe" syscall-delete e1000 && gone e1000'

	out=$(under_shim "$probe" init "$root/$MODDIR/$E1000" 2>&1 &&
		under_shim "$probe" delete e1000 2>&1 &&
		under_shim "$probe" finit "$root/$MODDIR/$E1000" 2>&1 &&
		under_shim "$probe" delete e1000 2>&1); rc=$?
	why="rc=$rc $out; log: $(last_log)"
	expect "${p}probe-load-unload" eval '[ $rc = 0 ] && gone e1000 &&
		[ "$(under_shim "$probe" delete e1000 2>/dev/null)" = ENOENT ] &&
		[ "$(last_log)" = "fail e1000 ENOENT" ]'

	out=$(under_shim "$probe" finit "$root/$MODDIR/$VLAN8021Q" 2>/dev/null)
	why="got '$out'; log: $(last_log)"
	expect "${p}unknown-symbol" eval '[ "$out" = ENOENT ] && gone 8021q &&
		[ "$(last_log)" = "fail 8021q ENOENT" ]'

	out=$(under_shim "$probe" syscalls 2>&1); rc=$?
	why="rc=$rc $out"
	expect "${p}syscall-forward" eval '[ $rc = 0 ] && [ "$out" = "syscall write ok" ]'

	out=$(under_shim cat /proc/cpuinfo 2>&1); rc=$?
	why="rc=$rc $(printf '%s' "$out" | head -n 3)"
	expect "${p}unrelated-proc" eval '[ $rc = 0 ] && printf "%s\n" "$out" | grep -q "^processor"'

	out=$(under_shim ls /sys/class 2>&1); rc=$?
	why="rc=$rc $out"
	expect "${p}unrelated-sys" eval '[ $rc = 0 ] && [ "$out" = "$(ls /sys/class)" ]'

	# The other way for a sanitized program: its runtime preloaded before the shim.
	local asan
	asan=$(ldd "$probe" | awk '/libasan/ { print $3 }')
	if [ -n "$asan" ]; then
		out=$(ASAN_OPTIONS='' LD_PRELOAD="$asan $shim" KMODD_SHIM_ROOT=$root \
			"$probe" stat /sys/module 2>&1); rc=$?
		why="rc=$rc $out"
		expect "${p}asan-runtime-first" eval '[ $rc = 0 ] && [ "$out" = directory ]'
	fi
}

[ -f "$SHIM" ] || { fail setup "$SHIM not built (meson compile -C $BUILD)"; finish; }
PROBE=$(dirname "$SHIM")/shim-probe

# A sanitized shim-probe needs this beside the preloaded shim (README.md).
asan_options() { # probe
	if readelf -d "$1" | grep -q 'NEEDED.*libasan'; then
		echo "verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	else
		echo "${ASAN_OPTIONS:-}"
	fi
}

ASAN_OPTIONS=$(asan_options "$PROBE") scenario "" "$SHIM" "$PROBE"

BUILD_SAN=${BUILD_SAN:-$SRC/build-san}
SAN_SHIM=$BUILD_SAN/tests/integration/shim/libkmodd-shim.so
if [ "$(realpath "$SHIM")" = "$(realpath -m "$SAN_SHIM")" ]; then
	:
elif [ -f "$SAN_SHIM" ]; then
	SAN_PROBE=$(dirname "$SAN_SHIM")/shim-probe
	ASAN_OPTIONS=$(asan_options "$SAN_PROBE") scenario "san:" "$SAN_SHIM" "$SAN_PROBE"
elif [ -d "$BUILD_SAN" ]; then
	skip san "$BUILD_SAN has no shim (meson compile -C $BUILD_SAN)"
fi

finish
