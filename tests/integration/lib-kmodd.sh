# Sourced by the kmodd tests after lib.sh and lib-repo.sh: a minimal-base root with kmpbuild's
# repository of the full-54 fixture served by nginx, and kmodd running on it with the load shim.
#
#   kmodd_root DIR        DIR/root: a copy of base-54 with the repository configured and refreshed
#   kmodd_start [ENV...]  starts kmodd --root on it (LD_PRELOAD shim); $KPID, $KSOCK, $KLOG
#   kmodd_stop            SIGTERM, waits for the exit; its status in $KRC
#   vl METHOD [JSON]      one Varlink call through varlink-client.py; the reply on stdout
#   jqr FILTER            jq -r on the last reply
KMODD=${KMODD:-$BUILD/kmodd/kmodd}
VLCLIENT="python3 $SRC/tests/integration/varlink-client.py"
E1000=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00
I6300ESB=pci:v00008086d000025ABsv00001AF4sd00001100bc08sc80i00
KPID=
[ -x "$KMODD" ] || { echo "FAIL $TEST_NAME:setup: $KMODD not built (meson compile -C build)"; exit 1; }

trap 'kmodd_kill; _repo_stop_all; _cleanup' EXIT

kmodd_kill() { [ -n "$KPID" ] && kill -9 "$KPID" 2>/dev/null; KPID=; return 0; }

kmodd_root() { # DIR
	local d=$1 repo url
	ROOT=$d/root
	mkdir -p "$ROOT"
	chmod 755 "$d"
	fixture_copy base-54 "$ROOT"
	chmod 755 "$ROOT" # the fixture cache may be private; 'nobody' must reach the socket
	# the shipped policies, as meson installs them
	mkdir -p "$ROOT/usr/lib/kmodd"
	cp -r "$SRC/policies" "$ROOT/usr/lib/kmodd/policies" && rm -f "$ROOT/usr/lib/kmodd/policies/README.md"
	repo=$(bash "$SRC/kmpbuild/cached-repo.sh" full-54 2>"$d/cached-repo.log" | tail -n 1)
	[ -d "$repo/repodata" ] || { echo "cannot build the repository: $(tail -n 3 "$d/cached-repo.log")"; return 1; }
	url=$(repo_serve "$repo") || return 1
	"$KMODCTL" --root "$ROOT" repo add full "$url" --no-gpgcheck >/dev/null &&
		"$KMODCTL" --root "$ROOT" repo refresh >/dev/null
}

kmodd_start() { # [ENV=VALUE...]
	KLOG=${KLOG:-$ROOT/../kmodd.log}
	KSOCK=$ROOT/run/kmodd/io.kmodd
	rm -f "$KSOCK"
	env LD_PRELOAD="$SHIM" KMODD_SHIM_ROOT="$ROOT" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@" \
		"$KMODD" --root "$ROOT" --no-udev >>"$KLOG" 2>&1 &
	KPID=$!
	local i
	for i in $(seq 100); do
		[ -S "$KSOCK" ] && return 0
		kill -0 "$KPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "kmodd did not start: $(tail -n 3 "$KLOG")"
	return 1
}

kmodd_stop() {
	[ -n "$KPID" ] || return 0
	kill -TERM "$KPID" 2>/dev/null
	KRC=0
	wait "$KPID" || KRC=$?
	KPID=
}

REPLY_JSON=
vl() { # METHOD [PARAMS-JSON]
	REPLY_JSON=$($VLCLIENT call "$KSOCK" "io.kmodd.Manager.$1" ${2:+"$2"})
	printf '%s\n' "$REPLY_JSON"
}
jqr() { printf '%s' "$REPLY_JSON" | jq -r "$1"; }

# kmodd_wait_idle [SECONDS]: until nothing is queued or running
kmodd_wait_idle() {
	local end=$((SECONDS + ${1:-300}))
	while [ $SECONDS -lt $end ]; do
		vl Status >/dev/null
		[ "$(jqr '.parameters.state')" = idle ] && [ "$(jqr '.parameters.queued')" = 0 ] && return 0
		sleep 0.2
	done
	return 1
}
