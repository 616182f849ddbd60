#!/usr/bin/env bash
# kmodd under a burst: 1,000 device events over 200 distinct modaliases (190 served by a
# package of the repository, 10 by nothing), sent as oneway HandleModalias calls pipelined on
# one connection. Each distinct modalias is resolved once (duplicates join the queued event,
# or find it served or in the negative cache), none is lost, and every module ends up loaded
# (LD_PRELOAD shim). Then the idle daemon is watched for 10 s: it must not wake up at all.
# Prints peak RSS, duration and wakeups as "#" lines; bench/RESULTS.md records them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-kmodd.sh"

N_REAL=${KMODD_BURST_MODALIASES:-190}
N_NONE=10
COPIES=5

t=$(mktmp)
if ! kmodd_root "$t" >"$t/setup.log" 2>&1; then
	fail setup "$(tail -n 3 "$t/setup.log")"
	finish
fi
if kmodd_start >"$t/start.log" 2>&1; then
	pass start
else
	fail start "$(cat "$t/start.log")"
	finish
fi

# 190 modaliases of distinct modules outside the base, from the full tree's PCI aliases with a
# concrete vendor and device (wildcards made concrete), and 10 that nothing serves. Devices
# queued behind each other are installed together, up to 16 in one transaction.
base=$(find "$ROOT/lib/modules/$KVER54" -name '*.ko*' -printf '%f\n' | sed 's/\.ko.*//; s/-/_/g' | sort -u)
grep -E '^alias pci:v[0-9A-F]{8}d[0-9A-F]{8}sv' "$FIXTURES/full-54/lib/modules/$KVER54/modules.alias" |
	awk '{ print $3, $2 }' | sort -u -k1,1 | grep -v -w -F -f <(echo "$base") |
	awk '{ print $2, $1 }' | sed 's/\*/0/g' | awk '!seen[$1]++' >"$t/candidates"
head -n "$N_REAL" "$t/candidates" | awk '{ print $1 }' >"$t/real"
for i in $(seq "$N_NONE"); do
	printf 'pci:v0000FFF%Xd0000EEEEsv0sd0bc0sc0i0\n' "$i"
done >"$t/none"
cat "$t/real" "$t/none" >"$t/distinct"
check distinct-modaliases [ "$(sort -u "$t/distinct" | wc -l)" = $((N_REAL + N_NONE)) ]
for i in $(seq $COPIES); do cat "$t/distinct"; done | shuf --random-source=<(yes) >"$t/events"
n_events=$(wc -l <"$t/events")

vl Status >"$t/before.json"
t0=$(date +%s.%N)
check burst-sent $VLCLIENT burst "$KSOCK" "$t/events"
if kmodd_wait_idle 900; then
	pass burst-drained
else
	fail burst-drained "still busy after 900 s: $(jqr '.parameters.queued') queued"
fi
t1=$(date +%s.%N)
vl Status >"$t/after.json"
d() { echo $(($(jq ".parameters.counters.$1" "$t/after.json") - $(jq ".parameters.counters.$1" "$t/before.json"))); }
received=$(d received)
resolved=$(d resolved)
dedup=$(d deduplicated)
served=$(d served)
neg=$(d negativeHits)
dropped=$(d dropped)
installed=$(d installed)
transactions=$(d transactions)
check all-received [ "$received" = "$n_events" ]
check none-dropped [ "$dropped" = 0 ]
check fewer-transactions-than-installs [ "$transactions" -lt "$installed" ]

# every distinct modalias has a final result, and was resolved exactly once
vl List >"$t/list.json"
jq -r '.parameters.devices[] | "\(.modalias) \(.state) \(.result)"' "$t/list.json" | sort >"$t/results"
missing=$(sort "$t/distinct" | join -v1 - "$t/results" | wc -l)
check none-lost [ "$missing" = 0 ]
check no-pending sh -c "! grep -E ' (queued|running) ' '$t/results'"
# one resolution line per modalias: "resolved to" (then installed) or "not installing" (blacklisted)
while read -r m; do
	printf '%s %s\n' "$m" "$(grep -c -E "^kmodd: $m: (resolved to|not installing)" "$KLOG")"
done <"$t/real" >"$t/resolutions"
check each-resolved-once sh -c "! awk '\$2 != 1' '$t/resolutions' | grep -q ."
check resolved-count [ "$resolved" = $((N_REAL + N_NONE)) ]
check duplicates-accounted [ $((dedup + served + neg)) = $((n_events - N_REAL - N_NONE)) ]
check none-matched-nothing-cached [ "$(grep -c -E '^pci:v0000FFF[0-9A-F]d0000EEEE.* no-match no-match$' "$t/results")" = "$N_NONE" ]
# every modalias kmodd installed or found served has its driver loaded
n_loaded=0
n_want=0
while read -r m state result; do
	case "$result" in installed | served) ;; *) continue ;; esac
	n_want=$((n_want + 1))
	for x in $(modprobe -d "$ROOT" -S "$KVER54" -R "$m" 2>/dev/null); do
		[ -d "$ROOT/sys/module/$x" ] && { n_loaded=$((n_loaded + 1)); break; }
	done
done <"$t/results"
n_installed_results=$(grep -c ' installed$' "$t/results")
check every-served-modalias-loaded [ "$n_loaded" = "$n_want" ]
check verify-after-burst "$KMODCTL" --root "$ROOT" verify
rss=$(jq .parameters.peakRssKiB "$t/after.json")
secs=$(echo "$t1 - $t0" | bc)
echo "# burst: $n_events events over $((N_REAL + N_NONE)) modaliases in ${secs}s: resolved $resolved, installed $installed in $transactions transactions, deduplicated $dedup, served $served, negative-cache hits $neg, dropped $dropped; $n_installed_results modaliases installed and loaded; peak RSS $rss KiB"
echo "# burst results: $(awk '{ print $3 }' "$t/results" | sort | uniq -c | tr -s ' ' | tr '\n' ',')"

# ---- idle: no wakeups at all
switches() {
	local s=0 f v
	for f in /proc/"$KPID"/task/*/status; do
		v=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { n += $2 } END { print n }' "$f")
		s=$((s + v))
	done
	echo "$s"
}
sleep 1
threads=$(ls /proc/"$KPID"/task | wc -l)
s0=$(switches)
sleep 10
s1=$(switches)
echo "# idle: $((s1 - s0)) context switches in 10 s over $threads thread(s) ($(echo "scale=1; ($s1 - $s0) / 10" | bc)/s)"
check idle-zero-wakeups [ "$((s1 - s0))" = 0 ]
check idle-one-thread [ "$threads" = 1 ]
if command -v strace >/dev/null; then
	timeout -s INT 5 strace -f -p "$KPID" -o "$t/strace.log" 2>/dev/null
	# attaching interrupts the epoll_wait: the loop goes round once (gettid, epoll_wait);
	# anything else would be work done while idle
	n=$(grep -v -E 'resuming interrupted|strace: Process' "$t/strace.log" | grep -c .)
	other=$(grep -v -E 'resuming interrupted|strace: Process|gettid\(|epoll_wait\(' "$t/strace.log" | grep -c .)
	echo "# idle: $n system calls in 5 s under strace, all of them the attach's own loop iteration but $other"
	check idle-no-syscalls sh -c "[ $other = 0 ] || { cat '$t/strace.log'; exit 1; }"
fi

# ---- a batch whose transaction fails: each device on its own, the bad package spoils only its
# own. The repository is now a copy with one package file corrupted (its metadata unchanged).
# four devices nothing in the tree serves yet, no watchdogs: the first runs alone, the other
# three queue behind it and go together; the third one's package is corrupt
"$KMODCTL" --root "$ROOT" watchdog list --json | jq -r '.kernels[][] | .name' >"$t/watchdogs"
tail -n +$((N_REAL + 1)) "$t/candidates" | while read -r m mod; do
	grep -qx "$mod" "$t/watchdogs" && continue
	modprobe -d "$ROOT" -S "$KVER54" -R "$m" >/dev/null 2>&1 || echo "$m $mod"
done | head -n 4 >"$t/three"
bad_mod=$(sed -n 3p "$t/three" | awk '{ print $2 }')
repo=$(bash "$SRC/kmpbuild/cached-repo.sh" full-54 2>/dev/null | tail -n 1)
cp -al "$repo" "$t/badrepo"
bad_rpm=$(find "$t/badrepo/x86_64" -name "$(echo "$bad_mod" | sed 's/_/[-_]/g')-kmp-*.rpm" | head -n 1)
if [ -n "$bad_rpm" ] && [ -n "$bad_mod" ]; then
	head -c 3000 "$bad_rpm" >"$bad_rpm.tmp" && mv -f "$bad_rpm.tmp" "$bad_rpm"
	url=$(repo_serve "$t/badrepo")
	"$KMODCTL" --root "$ROOT" repo remove full >/dev/null &&
		"$KMODCTL" --root "$ROOT" repo add bad "$url" --no-gpgcheck >/dev/null &&
		"$KMODCTL" --root "$ROOT" repo refresh >/dev/null
	vl Refresh >/dev/null
	vl Status >"$t/before2.json"
	awk '{ print $1 }' "$t/three" >"$t/three-m"
	$VLCLIENT burst "$KSOCK" "$t/three-m" >/dev/null
	kmodd_wait_idle 300
	vl List >"$t/list2.json"
	res() { jq -r --arg m "$(sed -n "$1p" "$t/three-m")" '.parameters.devices[] | select(.modalias == $m) | .result' "$t/list2.json"; }
	r1=$(res 1) r2=$(res 2) r3=$(res 3) r4=$(res 4)
	vl Status >"$t/after2.json"
	check batch-fallback-good-ones-installed [ "$r1/$r2/$r4" = installed/installed/installed ]
	check batch-fallback-bad-one-failed [ "$r3" = failed ]
	check batch-fallback-logged grep -q "$(basename "$bad_rpm")" "$KLOG"
	check batch-fallback-verify "$KMODCTL" --root "$ROOT" verify
	echo "# batch fallback: $bad_mod (corrupted package): $r3; the three beside it: $r1, $r2, $r4; transactions: $(($(jq .parameters.counters.transactions "$t/after2.json") - $(jq .parameters.counters.transactions "$t/before2.json")))"
else
	skip batch-fallback "no package file found for $bad_mod"
fi

kmodd_stop
check sigterm-exit-0 [ "$KRC" = 0 ]
check no-sanitizer-reports sh -c "! grep -q -E 'AddressSanitizer|runtime error:|LeakSanitizer' '$KLOG'"
finish
