#!/usr/bin/env bash
# shellcheck disable=SC2317 # builders and the trap are called indirectly
# SPDX-License-Identifier: LGPL-2.1-or-later
# VM tier: boot the fixture kernel 6.1.0-54-amd64 under qemu (TCG) with an initramfs built
# from host binaries and run tests/vm/scenarios/NAME.sh inside it. See tests/vm/README.md.
#
#   tests/vm/run.sh [-v] [-k] [-j N] [SCENARIO...]    run all scenarios, or the named ones
#   tests/vm/run.sh -l                                list the scenarios
#
# Prints one line per check, "PASS NAME:CHECK", "FAIL NAME:CHECK: WHY", "SKIP NAME:CHECK: WHY",
# and "FAIL NAME: WHY" when the VM itself went wrong (timeout, panic, no results); lines
# starting with "#" are information. Exit status: 0 no FAIL, 1 some FAIL, 2 usage error.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
VMDIR=$SRC/tests/vm
BUILD=${BUILD:-$SRC/build}
KVER=6.1.0-54-amd64
FORMAT=3 # bump when the layout of the cached pieces changes
PROGRAMS=(kmodctl/kmodctl kmodctl/kmodctl-full kmodd/kmodd)
DEFAULT_TIMEOUT=60
DEFAULT_MEMORY=1536

arg_verbose=0
arg_keep=0
arg_jobs=${KMODD_VM_JOBS:-2}

usage() {
	sed -n '4,12s/^# \{0,1\}//p' "$0"
	cat <<EOF

Options:
  -v, --verbose   stream the guest console to stderr
  -k, --keep      keep the work directories (console.log, results.log, initrd) in /tmp
  -j, --jobs N    run up to N VMs at once (default \$KMODD_VM_JOBS or 2)
  -l, --list      list the scenarios and exit
Environment: BUILD (default $SRC/build), KMODD_FIXTURES, KMODD_VM_CACHE (default
\${XDG_CACHE_HOME:-~/.cache}/kmodd/vm), KMODD_VM_TIMEOUT (overrides every scenario's timeout).
EOF
}

scenarios_all() {
	local f
	for f in "$VMDIR"/scenarios/*.sh; do
		case "$f" in *.host.sh) continue ;; esac
		[ -e "$f" ] && basename "$f" .sh
	done
}

names=()
while [ $# -gt 0 ]; do
	case "$1" in
	-v | --verbose) arg_verbose=1 ;;
	-k | --keep) arg_keep=1 ;;
	-j | --jobs)
		arg_jobs=${2:-}
		shift
		;;
	-j[0-9]*) arg_jobs=${1#-j} ;;
	--jobs=*) arg_jobs=${1#--jobs=} ;;
	-l | --list)
		scenarios_all
		exit 0
		;;
	-h | --help)
		usage
		exit 0
		;;
	-*)
		echo "run.sh: unknown option '$1'; see 'tests/vm/run.sh --help'" >&2
		exit 2
		;;
	*) names+=("${1%.sh}") ;;
	esac
	shift
done
case "$arg_jobs" in
'' | *[!0-9]* | 0)
	echo "run.sh: --jobs wants a positive number, not '$arg_jobs'" >&2
	exit 2
	;;
esac
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(scenarios_all)
for n in "${names[@]}"; do
	if [ ! -f "$VMDIR/scenarios/$n.sh" ]; then
		echo "run.sh: no scenario '$n' (tests/vm/scenarios/$n.sh); 'tests/vm/run.sh -l' lists them" >&2
		exit 2
	fi
done

# ---------------------------------------------------------------- prerequisites

skip_all() {
	local n
	for n in "${names[@]}"; do
		echo "SKIP $n: $*"
	done
	exit 0
}

command -v qemu-system-x86_64 >/dev/null ||
	skip_all "qemu-system-x86_64 not found (scripts/deps.sh installs qemu-system-x86)"
for t in busybox cpio zstd python3 depmod; do
	command -v $t >/dev/null || skip_all "$t not found (run scripts/deps.sh)"
done
[ -x /bin/busybox ] || skip_all "/bin/busybox not found (scripts/deps.sh installs busybox-static)"
[ -x /lib/systemd/systemd-udevd ] || skip_all "/lib/systemd/systemd-udevd not found (scripts/deps.sh installs udev)"
FIXTURES=$("$SRC/scripts/fixtures.sh" 2>/dev/null | tail -n 1)
KERNEL=$FIXTURES/full-54/boot/vmlinuz-$KVER
[ -f "$KERNEL" ] || skip_all "fixture kernel $KERNEL missing (run scripts/fixtures.sh)"

CACHE=${KMODD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodd/vm}
mkdir -p "$CACHE" || skip_all "cannot create the cache directory $CACHE"
WORKROOT=$(mktemp -d /tmp/kmodd-vm.XXXXXX)
# a running qemu or hook is listed in $WORKROOT/NAME/pids (a hook as "-PGID") until it has
# been reaped, also by the subshells of --jobs, so an interrupted run leaves nothing behind
cleanup() {
	local p f
	for f in "$WORKROOT"/*/pids; do
		[ -f "$f" ] || continue
		while read -r p; do kill -- "$p" 2>/dev/null; done <"$f"
	done
	for p in $(jobs -p); do kill "$p" 2>/dev/null; done
	[ "$arg_keep" = 1 ] || rm -rf "$WORKROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

exec 3>&2 # --verbose streams here, also from the subshells of --jobs
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --------------------------------------------------------- initramfs pieces
#
# The initramfs is a concatenation of newc cpio archives, the first plain, the others
# zstd-compressed (the kernel unpacks them one after the other). All but the last are cached
# in $CACHE as NAME-KEY.cpio[.zst], KEY being a hash of everything that goes into it:
#   mods-SPEC  the module tree a scenario asks for (fixture stamp + spec), not compressed
#   sys        busybox, kmod, systemd-udevd, udevadm, udev rules and helpers, jq, their libraries
#   prog       our programs from $BUILD (kmodctl, kmodd) and their libraries
#   (per run)  /init, the scenario and its helpers: small, built every run

piece_key() { # WORDS... → hash of the words and of the files among them
	{
		echo "format $FORMAT"
		printf '%s\n' "$@"
		local f
		for f in "$@"; do
			[ -f "$f" ] && sha256sum <"$f"
		done
	} | sha256sum | cut -c1-16
}

# piece NAME KEY COMPRESSION BUILDER [ARGS...]: print the cached piece's path, building it
# with "BUILDER DIR ARGS..." (which fills DIR with the tree to archive) when missing.
# COMPRESSION is zstd, or none for the module trees: under TCG the guest copies 400 MB of
# plain cpio in about 0.1 s but needs 2.5 s to decompress it.
piece() {
	local name=$1 key=$2 comp=$3 builder=$4 out stage old
	shift 4
	out=$CACHE/$name-$key.cpio
	[ "$comp" = zstd ] && out=$out.zst
	if [ ! -s "$out" ]; then
		stage=$(mktemp -d "$CACHE/.stage-$name.XXXXXX") || return 1
		if ! "$builder" "$stage" "$@" >&2; then
			rm -rf "$stage"
			return 1
		fi
		(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet |
			if [ "$comp" = zstd ]; then zstd -q -T0 -3; else cat; fi) >"$stage.out" &&
			mv "$stage.out" "$out"
		rm -rf "$stage" "$stage.out"
		[ -s "$out" ] || return 1
		for old in "$CACHE/$name"-*.cpio "$CACHE/$name"-*.cpio.zst; do
			[ "$old" = "$out" ] || rm -f "$old"
		done
	fi
	echo "$out"
}

stage_file() { # DIR HOSTPATH: copy to the same path in DIR, symlinks resolved
	mkdir -p "$1/$(dirname "$2")" && cp -L "$2" "$1/$2"
}

libs_of() { # BINARY...: its shared libraries and the dynamic loader, by ldd
	local b
	for b in "$@"; do
		ldd "$b" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
	done | LC_ALL=C sort -u
}

SYS_BINS=(/bin/dash /bin/kmod /lib/systemd/systemd-udevd /bin/udevadm /usr/bin/jq /lib/systemd/systemd /bin/systemctl)
sys_files() {
	local f
	echo /bin/busybox
	for f in "${SYS_BINS[@]}" /lib/udev/*_id; do
		[ -x "$f" ] && echo "$f"
	done
	find /lib/udev/rules.d -type f | LC_ALL=C sort
	libs_of "${SYS_BINS[@]}" /lib/udev/*_id
}

build_sys() { # DIR FILES...
	local d=$1 f l
	shift
	for f in "$@"; do
		stage_file "$d" "$f" || return 1
	done
	mkdir -p "$d/sbin" "$d/etc/udev" "$d/etc/modprobe.d"
	for l in depmod insmod lsmod modinfo modprobe rmmod; do
		ln -s /bin/kmod "$d/sbin/$l"
	done
	ln -s dash "$d/bin/sh"
}

build_prog() { # DIR FILES...: programs go to /usr/bin, libraries to their own path
	local d=$1 f
	shift
	mkdir -p "$d/usr/bin"
	for f in "$@"; do
		case "$f" in
		"$BUILD"/*) cp -L "$f" "$d/usr/bin/" || return 1 ;;
		*) stage_file "$d" "$f" || return 1 ;;
		esac
	done
}

build_repo() { # DIR REPODIR
	mkdir -p "$1/srv" && { cp -al "$2" "$1/srv/kmodd-repo" 2>/dev/null || cp -a "$2" "$1/srv/kmodd-repo"; }
}

# build_mods DIR SPEC...: "full" = the fixture's whole tree; "base [MOD...]" = the base-54
# root plus MOD and its dependencies from full-54, depmod run; Module.symvers either way.
build_mods() {
	local d=$1 kind=$2 m w p symvers=usr/src/linux-headers-$KVER/Module.symvers
	shift 2
	[ "$kind" = none ] && return 0
	mkdir -p "$d/lib/modules" "$d/$(dirname "$symvers")"
	cp "$FIXTURES/full-54/$symvers" "$d/$symvers" || return 1
	case "$kind" in
	full)
		cp -al "$FIXTURES/full-54/lib/modules/$KVER" "$d/lib/modules/" 2>/dev/null ||
			cp -a "$FIXTURES/full-54/lib/modules/$KVER" "$d/lib/modules/" || return 1
		;;
	base)
		cp -a "$FIXTURES/base-54/lib/modules/$KVER" "$d/lib/modules/" || return 1
		for m in "$@"; do
			modprobe -d "$FIXTURES/full-54" -S "$KVER" --show-depends --ignore-install "$m" >"$d/.deps" || {
				echo "run.sh: module '$m' not in the fixture tree" >&2
				return 1
			}
			while read -r w p _; do
				[ "$w" = insmod ] || continue
				p=${p#"$FIXTURES/full-54/"}
				mkdir -p "$d/$(dirname "$p")" && cp "$FIXTURES/full-54/$p" "$d/$p" || return 1
			done <"$d/.deps"
			rm -f "$d/.deps"
		done
		depmod -b "$d" "$KVER" || return 1
		;;
	*)
		echo "run.sh: vm-modules: unknown tree '$kind' (full, base [MODULE...], none)" >&2
		return 1
		;;
	esac
}

# boot_kernel: print the kernel image qemu boots. The fixture's bzImage is XZ-compressed and
# under TCG its decompression plus the real-mode boot path cost 3-4 s per VM; the ELF vmlinux
# inside it boots directly through PVH (CONFIG_PVH=y), so extract it once into the cache.
# Falls back to the bzImage when that fails.
boot_kernel() {
	local out off tmp
	out=$CACHE/vmlinux-$KVER-$(piece_key "$KERNEL")
	if [ ! -s "$out" ]; then
		off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$KERNEL" | head -n 1 | cut -d: -f1)
		tmp=$(mktemp "$CACHE/.vmlinux.XXXXXX") || return 1
		# xz stops reading at the end of the stream: ignore the pipeline's SIGPIPE status
		[ -n "$off" ] && { tail -c +$((off + 1)) "$KERNEL" | xz -dc --single-stream >"$tmp"; } 2>/dev/null
		if [ "$(head -c 4 "$tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			rm -f "$CACHE/vmlinux-$KVER-"*
			mv "$tmp" "$out"
		else
			rm -f "$tmp"
			echo "$KERNEL"
			return 0
		fi
	fi
	echo "$out"
}

# header FILE KEY: the values of "# vm-KEY: VALUE" lines, space separated
header() {
	sed -n "s/^# vm-$2:[[:space:]]*//p" "$1" | tr '\n' ' ' | sed 's/[[:space:]]*$//'
}

build_run_piece() { # DIR NAME
	local d=$1 n=$2
	mkdir -p "$d"/{proc,sys,dev,run,tmp,root,etc,vmtest,bin,sbin,usr/bin,usr/sbin}
	cp "$VMDIR/lib/init" "$d/init" && chmod 755 "$d/init"
	cp "$VMDIR/lib/guest.sh" "$d/vmtest/lib.sh"
	cp "$VMDIR/scenarios/$n.sh" "$d/vmtest/scenario.sh"
	echo "$n" >"$d/vmtest/name"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$d/etc/passwd"
	printf 'root:x:0:\n' >"$d/etc/group"
	local g gid=100
	for g in tty disk lp kmem dialout audio video cdrom floppy tape input kvm render sgx; do
		echo "$g:x:$gid:" >>"$d/etc/group"
		gid=$((gid + 1))
	done
	echo 'nogroup:x:65534:' >>"$d/etc/group"
	echo vm >"$d/etc/hostname"

	# vm-files: HOST[:GUEST] ...: HOST relative to the source tree (or $BUILD/..., $FIXTURES/...,
	# absolute);
	# GUEST defaults to /vmtest/files/BASENAME; directories are copied whole
	local spec src dst
	for spec in $(header "$VMDIR/scenarios/$n.sh" files); do
		src=${spec%%:*}
		dst=/vmtest/files/$(basename "$src")
		[ "$src" = "$spec" ] || dst=${spec#*:}
		src=${src//\$BUILD/$BUILD}
		src=${src//\$FIXTURES/$FIXTURES}
		case "$src" in /*) ;; *) src=$SRC/$src ;; esac
		if [ ! -e "$src" ]; then
			echo "run.sh: vm-files: $src does not exist" >&2
			return 1
		fi
		mkdir -p "$d/$(dirname "$dst")" && cp -a "$src" "$d/$dst" || return 1
	done
}

# prepare NAME WORKDIR: assemble WORKDIR/initrd; on failure print why and return 1
prepare() {
	local n=$1 w=$2 f=$VMDIR/scenarios/$1.sh spec key mods sys prog=
	local -a files progs

	spec=$(header "$f" modules)
	spec=${spec:-full}
	key=$(piece_key "$(cat "$FIXTURES/.stamp" 2>/dev/null)" "$spec")
	# shellcheck disable=SC2086 # the spec is a word list
	mods=$(piece "mods-$(echo "$spec" | tr -c 'A-Za-z0-9_\n-' '+')" "$key" none build_mods $spec) || {
		echo "cannot build the module tree '$spec'"
		return 1
	}

	mapfile -t files < <(sys_files)
	sys=$(piece sys "$(piece_key "${files[@]}")" zstd build_sys "${files[@]}") || {
		echo "cannot build the system piece (busybox, kmod, udev)"
		return 1
	}

	progs=()
	for p in "${PROGRAMS[@]}"; do
		[ -x "$BUILD/$p" ] && progs+=("$BUILD/$p")
	done
	if [ ${#progs[@]} -gt 0 ]; then
		mapfile -t files < <(printf '%s\n' "${progs[@]}"; libs_of "${progs[@]}")
		prog=$(piece prog "$(piece_key "${files[@]}")" zstd build_prog "${files[@]}") || {
			echo "cannot build the programs piece from $BUILD"
			return 1
		}
	fi

	# vm-repo: FIXTURE: kmpbuild's repository of that fixture (kmpbuild/cached-repo.sh) at
	# /srv/kmodd-repo in the guest, as a cached uncompressed piece (rpm payloads are compressed)
	local repospec rdir repo=
	repospec=$(header "$f" repo)
	if [ -n "$repospec" ]; then
		rdir=$(bash "$SRC/kmpbuild/cached-repo.sh" "$repospec" 2>&1 | tail -n 1)
		[ -d "$rdir/repodata" ] || {
			echo "cannot build the KMP repository of '$repospec': $rdir"
			return 1
		}
		repo=$(piece "repo-$repospec" "$(piece_key "$rdir")" none build_repo "$rdir") || {
			echo "cannot build the repository piece from $rdir"
			return 1
		}
	fi

	rm -rf "$w/run"
	build_run_piece "$w/run" "$n" || {
		echo "cannot assemble the scenario's files"
		return 1
	}
	(cd "$w/run" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet |
		zstd -q -3) >"$w/run.cpio.zst" || return 1
	cat "$mods" ${repo:+"$repo"} "$sys" ${prog:+"$prog"} "$w/run.cpio.zst" >"$w/initrd"
}

# --------------------------------------------------------------- one scenario

# run_one NAME WORKDIR: boot, wait, report; prints the scenario's lines, returns 1 on FAIL
run_one() {
	local n=$1 w=$2 f=$VMDIR/scenarios/$1.sh hook=$VMDIR/scenarios/$1.host.sh
	local timeout mem extra t0 t_prep qpid hpid='' qrc hrc=0 reason='' ended=0 nfail=0 nchecks=0
	local line boot='' boot_wall='' rc=''

	timeout=${KMODD_VM_TIMEOUT:-$(header "$f" timeout)}
	timeout=${timeout:-$DEFAULT_TIMEOUT}
	mem=$(header "$f" memory)
	mem=${mem:-$DEFAULT_MEMORY}
	extra=$(header "$f" qemu)

	t0=$(now)
	if ! reason=$(prepare "$n" "$w" 2>"$w/prepare.log"); then
		echo "FAIL $n: ${reason:-cannot assemble the initramfs}"
		sed 's/^/#   | /' "$w/prepare.log" | tail -n 15
		return 1
	fi
	t_prep=$(elapsed "$t0")

	: >"$w/console.log"
	: >"$w/results.log"
	: >"$w/host-results.log"
	t0=$(now)
	# shellcheck disable=SC2086 # vm-qemu: is a word list
	qemu-system-x86_64 -accel tcg -nodefaults -nographic -no-reboot -smp 1 -m "$mem" \
		-kernel "$BOOT_KERNEL" -initrd "$w/initrd" \
		-append "console=ttyS0,115200 panic=-1 quiet loglevel=4 rdinit=/init" \
		-serial "file:$w/console.log" -serial "file:$w/results.log" \
		-qmp "unix:$w/qmp.sock,server=on,wait=off" \
		$extra </dev/null >"$w/qemu.log" 2>&1 &
	qpid=$!
	echo $qpid >>"$w/pids"
	if [ $arg_verbose = 1 ]; then
		tail -n +1 -f --pid=$qpid "$w/console.log" | sed -u "s/^/[$n] /" >&3 &
	fi
	if [ -f "$hook" ]; then
		# shellcheck disable=SC2016 # expanded by the hook's bash
		VM_NAME=$n VM_QMP=$w/qmp.sock VM_CONSOLE=$w/console.log VM_RESULTS=$w/results.log \
			VM_HOST_RESULTS=$w/host-results.log VM_LIB=$VMDIR/lib \
			setsid bash -c 'source "$VM_LIB/host.sh" && source "$1"' hook "$hook" \
			</dev/null >"$w/hook.log" 2>&1 &
		hpid=$!
		echo "-$hpid" >>"$w/pids"
	fi

	local deadline=$((SECONDS + timeout))
	while kill -0 $qpid 2>/dev/null; do
		if [ -z "$boot_wall" ] && grep -q '^@@VM BOOT' "$w/results.log"; then
			boot_wall=$(elapsed "$t0")
		fi
		if grep -q '^@@VM END' "$w/results.log"; then
			ended=1
			# the guest powers off right after; give it a moment
			local stop=$((SECONDS + 10))
			while kill -0 $qpid 2>/dev/null && [ $SECONDS -lt $stop ]; do sleep 0.1; done
			break
		fi
		if [ $SECONDS -ge $deadline ]; then
			reason="timed out after ${timeout}s"
			break
		fi
		sleep 0.2
	done
	kill $qpid 2>/dev/null
	wait $qpid 2>/dev/null
	qrc=$?
	grep -q '^@@VM END' "$w/results.log" && ended=1

	if [ -n "$hpid" ]; then
		local stop=$((SECONDS + 5))
		while kill -0 $hpid 2>/dev/null && [ $SECONDS -lt $stop ]; do sleep 0.1; done
		if kill -0 $hpid 2>/dev/null; then
			kill -- -$hpid 2>/dev/null || kill $hpid 2>/dev/null
			wait $hpid 2>/dev/null
			hrc=124
		else
			wait $hpid
			hrc=$?
		fi
	fi

	: >"$w/pids" # all reaped

	# checks from the guest, then from the host hook
	while IFS= read -r line; do
		line=${line%$'\r'}
		case "$line" in
		"@@VM PASS "* | "@@VM FAIL "* | "@@VM SKIP "*)
			line=${line#@@VM }
			echo "${line%% *} $n:${line#* }"
			nchecks=$((nchecks + 1))
			case "$line" in FAIL*) nfail=$((nfail + 1)) ;; esac
			;;
		"@@VM BOOT "*) boot=${line#@@VM BOOT } ;;
		"@@VM END "*) rc=${line#@@VM END } ;;
		"@@VM NOTE "*) echo "# $n: ${line#@@VM NOTE }" ;;
		esac
	done < <(cat "$w/results.log" "$w/host-results.log")

	if [ $ended = 0 ]; then
		if grep -q 'Kernel panic' "$w/console.log"; then
			reason="kernel panic: $(grep -m1 -o 'Kernel panic.*' "$w/console.log" | tr -d '\r')"
			grep -q 'Initramfs unpacking failed: write error' "$w/console.log" &&
				reason="$reason (the initramfs did not fit in memory: raise vm-memory, now ${mem} MB)"
		elif [ -z "$reason" ]; then
			reason="qemu exited (status $qrc) before the scenario finished"
			[ -s "$w/qemu.log" ] && reason="$reason: $(tail -n 1 "$w/qemu.log")"
		fi
		echo "FAIL $n: $reason"
		nfail=$((nfail + 1))
	elif [ "$rc" != 0 ]; then
		echo "FAIL $n:exit: the scenario script exited with status $rc"
		nfail=$((nfail + 1))
	elif [ $nchecks = 0 ]; then
		echo "FAIL $n: the scenario reported no checks"
		nfail=$((nfail + 1))
	fi
	if [ -n "$hpid" ] && [ $hrc != 0 ]; then
		if [ $hrc = 124 ]; then
			echo "FAIL $n:host: the host hook was still running when the VM stopped"
		else
			echo "FAIL $n:host: the host hook exited with status $hrc: $(tail -n 1 "$w/hook.log")"
		fi
		nfail=$((nfail + 1))
	fi

	echo "# $n: initramfs ${t_prep}s, qemu start to /init ${boot_wall:-?}s (guest clock ${boot:-?}s), VM run $(elapsed "$t0")s"
	if [ $nfail -gt 0 ]; then
		echo "# $n: last console lines ($w/console.log):"
		tr -d '\r' <"$w/console.log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[A-Za-z]//g' |
			grep -v '^@@VM ' | tail -n 25 | sed 's/^/#   | /'
		if [ -s "$w/hook.log" ]; then
			echo "# $n: host hook output:"
			tail -n 10 "$w/hook.log" | sed 's/^/#   | /'
		fi
		return 1
	fi
	return 0
}

# --------------------------------------------------------------------- main

BOOT_KERNEL=$(boot_kernel)

t_all=$(now)
failed=0
declare -A pids=()
for n in "${names[@]}"; do
	mkdir -p "$WORKROOT/$n"
done

# Pieces shared by several scenarios are built by the first one; build them before
# running VMs in parallel.
if [ "$arg_jobs" -gt 1 ] && [ ${#names[@]} -gt 1 ]; then
	for n in "${names[@]}"; do
		prepare "$n" "$WORKROOT/$n" >/dev/null 2>&1
	done
fi

running=0
for n in "${names[@]}"; do
	if [ "$arg_jobs" -le 1 ]; then
		run_one "$n" "$WORKROOT/$n" || failed=1
		continue
	fi
	while [ $running -ge "$arg_jobs" ]; do
		wait -n
		running=$((running - 1))
	done
	(
		trap - EXIT
		run_one "$n" "$WORKROOT/$n" >"$WORKROOT/$n/report" 2>&1
		echo $? >"$WORKROOT/$n/status"
	) &
	pids[$n]=$!
	running=$((running + 1))
done
if [ "$arg_jobs" -gt 1 ]; then
	for n in "${names[@]}"; do
		wait "${pids[$n]}"
		cat "$WORKROOT/$n/report"
		[ "$(cat "$WORKROOT/$n/status" 2>/dev/null)" = 0 ] || failed=1
	done
fi
echo "# vm: ${#names[@]} scenarios in $(elapsed "$t_all")s"
[ $arg_keep = 1 ] && echo "# vm: work directories kept in $WORKROOT"
exit $failed
