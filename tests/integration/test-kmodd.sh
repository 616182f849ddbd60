#!/usr/bin/env bash
# kmodd on the host: a minimal-base root (base-54), kmpbuild's repository of full-54 served by
# nginx, loads through the LD_PRELOAD shim, device events fed through the control API.
# HandleModalias installs and loads e1000; policies (AutoInstall, AllowedBuses, notify-only);
# the watchdog blacklist and 'kmodctl watchdog'; nobody cannot change anything; every message
# of the malformed Varlink corpus gets an error reply and kmodd stays up; connection limit;
# SIGTERM in the middle of an install finishes it; socket activation with idle exit.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-repo.sh"
source "$(dirname "$0")/lib-kmodd.sh"

t=$(mktmp)
# no journald here: a stand-in receives what kmodd sends with sd_journal_send()
JSOCK=/run/systemd/journal/socket
jpid=
if [ ! -e "$JSOCK" ] && mkdir -p "$(dirname "$JSOCK")" 2>/dev/null; then
	python3 "$SRC/tests/integration/journal-listener.py" "$JSOCK" "$t/journal.jsonl" &
	jpid=$!
	for i in $(seq 50); do [ -S "$JSOCK" ] && break; sleep 0.1; done
	trap 'kill $jpid 2>/dev/null; rm -f "$JSOCK"; kmodd_kill; _repo_stop_all; _cleanup' EXIT
fi
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

# ---- the e1000 story (watched by a monitor)
"$KMODCTL" --root "$ROOT" daemon monitor --json >"$t/monitor.jsonl" 2>&1 &
mpid=$!
for i in $(seq 50); do grep -q subscribed "$t/monitor.jsonl" 2>/dev/null && break; sleep 0.1; done
vl HandleModalias "{\"modalias\":\"$E1000\",\"devpath\":\"/devices/pci0000:00/0000:00:03.0\"}" >"$t/e1000.json"
if [ "$(jqr '.parameters.result')" = installed ]; then
	pass e1000-installed
else
	fail e1000-installed "$(cat "$t/e1000.json")"
fi
check e1000-package jq -e '.parameters.packages | index("e1000-kmp-amd64-6.1.190-1.x86_64")' "$t/e1000.json"
check e1000-loaded jq -e '.parameters.loaded == ["e1000"]' "$t/e1000.json"
check e1000-sys-module test -d "$ROOT/sys/module/e1000"
check e1000-shim-log grep -qx 'load e1000' "$ROOT/sys/module/.kmodd-shim.log"
check e1000-in-updates test -f "$ROOT/lib/modules/$KVER54/updates/drivers/net/ethernet/intel/e1000/e1000.ko"
check e1000-modprobe-finds-it sh -c "modprobe -d '$ROOT' -S $KVER54 --show-depends '$E1000' | grep -q updates/drivers/net/ethernet/intel/e1000/e1000.ko"
check e1000-timeline jq -e '.parameters.timelineMs | (.decided <= .resolved) and (.resolved <= .downloaded) and (.downloaded <= .installed) and (.installed <= .indexed) and (.indexed <= .loaded)' "$t/e1000.json"
echo "# e1000 timeline (ms): $(jq -c '.parameters.timelineMs | del(.receivedUsec)' "$t/e1000.json")"
if [ -n "$jpid" ]; then
	# the journal: one message per kind, with the device, package, module, result and durations
	jq -c --arg m "$E1000" 'select(.MODALIAS == $m)' "$t/journal.jsonl" >"$t/e1000-journal.jsonl"
	check journal-seen jq -e -s 'map(select(.MESSAGE_ID == "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d70" and .PRIORITY == "7" and .RESULT == "pending")) | length == 1' "$t/e1000-journal.jsonl"
	check journal-resolved jq -e -s 'map(select(.MESSAGE_ID == "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d71" and .PACKAGE == "e1000-kmp-amd64-6.1.190-1.x86_64")) | length == 1' "$t/e1000-journal.jsonl"
	check journal-installed jq -e -s 'map(select(.MESSAGE_ID == "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d72" and .RESULT == "installed" and .DEVPATH == "/devices/pci0000:00/0000:00:03.0")) | length == 1' "$t/e1000-journal.jsonl"
	check journal-loaded jq -e -s 'map(select(.MESSAGE_ID == "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d73" and .MODULE == "e1000" and (.LOADED_USEC | tonumber) > 0 and (.RESOLVED_USEC | tonumber) > 0 and (.INDEXED_USEC | tonumber) > 0 and .PRIORITY == "5")) | length == 1' "$t/e1000-journal.jsonl"
else
	skip journal "a journald socket exists here; the stand-in is not started"
fi
sleep 0.3
kill $mpid 2>/dev/null
wait $mpid 2>/dev/null
check monitor-subscribed jq -e -s '.[0].event == "subscribed" and .[0].state == "idle"' "$t/monitor.jsonl"
check monitor-queued jq -e -s --arg m "$E1000" 'map(select(.event == "queued" and .modalias == $m)) | length == 1' "$t/monitor.jsonl"
check monitor-finished jq -e -s --arg m "$E1000" 'map(select(.event == "finished" and .modalias == $m and .result == "installed" and .loaded == ["e1000"] and .timelineMs.loaded > 0)) | length == 1' "$t/monitor.jsonl"
check e1000-why sh -c "'$KMODCTL' --root '$ROOT' why e1000-kmp-amd64 | grep -qi hotplug"
check verify-after-e1000 "$KMODCTL" --root "$ROOT" verify
vl HandleModalias "{\"modalias\":\"$E1000\"}" >/dev/null
check e1000-again-served [ "$(jqr '.parameters.result')" = served ]
check kmodctl-status sh -c "'$KMODCTL' --root '$ROOT' status | grep -q 'installed 1'"
check kmodctl-daemon-handle-json sh -c "'$KMODCTL' --root '$ROOT' daemon handle '$E1000' --json | jq -e '.result == \"served\"'"
vl HandleModalias '{"modalias":"pci:v0000FFFFd0000FFFFsv0sd0bc0sc0i0"}' >/dev/null
check no-match [ "$(jqr '.parameters.result')" = no-match ]
vl HandleModalias '{"modalias":"pci:v0000FFFFd0000FFFFsv0sd0bc0sc0i0"}' >/dev/null
check no-match-cached sh -c "[ '$(jqr '.parameters.message')' != null ] && printf '%s' '$(jqr '.parameters.message')' | grep -q cached"
vl List >/dev/null
check list-packages [ "$(jqr '.parameters.packages | map(.name) | index("e1000-kmp-amd64") != null')" = true ]

# ---- the watchdog blacklist
check watchdog-list sh -c "'$KMODCTL' --root '$ROOT' watchdog list | grep -q 'i6300esb *blacklisted'"
check watchdog-run-blacklist grep -qx 'blacklist i6300esb' "$ROOT/run/modprobe.d/kmodd-watchdog.conf"
check watchdog-ipmi grep -qx 'blacklist ipmi_watchdog' "$ROOT/run/modprobe.d/kmodd-watchdog.conf"
vl HandleModalias "{\"modalias\":\"$I6300ESB\"}" >"$t/wd.json"
check watchdog-refused [ "$(jqr '.parameters.result')" = blacklisted ]
check watchdog-says-why sh -c "jq -r .parameters.message '$t/wd.json' | grep -q 'watchdog driver and blacklisted'"
check watchdog-not-installed test ! -e "$ROOT/lib/modules/$KVER54/updates/drivers/watchdog"
check watchdog-logged grep -q 'i6300esb is a watchdog driver and blacklisted' "$KLOG"
[ -n "$jpid" ] && check journal-refused jq -e -s --arg m "$I6300ESB" 'map(select(.MESSAGE_ID == "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d74" and .MODALIAS == $m and .RESULT == "blacklisted" and .MODULE == "i6300esb")) | length >= 1' "$t/journal.jsonl"
[ -n "$jpid" ] && check journal-failed-no-match jq -e -s 'map(select(.MESSAGE_ID == "5c3a1b0e4b7f4a4c9d2e8f6a1b3c5d75" and .RESULT == "no-match")) | length >= 1' "$t/journal.jsonl"
check watchdog-allow "$KMODCTL" --root "$ROOT" watchdog allow i6300esb
check watchdog-allow-etc sh -c "grep -qx 'Allow=i6300esb' '$ROOT/etc/kmodd/policies/watchdog.blacklist' && ! grep -qx 'blacklist i6300esb' '$ROOT/etc/modprobe.d/kmodd-watchdog.conf' && grep -qx 'blacklist ib700wdt' '$ROOT/etc/modprobe.d/kmodd-watchdog.conf'"
vl HandleModalias "{\"modalias\":\"$I6300ESB\"}" >/dev/null
check watchdog-installed-after-allow [ "$(jqr '.parameters.result')" = installed ]
check watchdog-loaded-after-allow test -d "$ROOT/sys/module/i6300esb"
check watchdog-allow-only-one sh -c "'$KMODCTL' --root '$ROOT' watchdog allow ib700wdt | grep -q 'i6300esb is denied again' && grep -qx 'blacklist i6300esb' '$ROOT/etc/modprobe.d/kmodd-watchdog.conf'"
check watchdog-deny sh -c "'$KMODCTL' --root '$ROOT' watchdog deny ib700wdt && grep -qx 'Allow=' '$ROOT/etc/kmodd/policies/watchdog.blacklist'"
check watchdog-not-a-watchdog sh -c "! '$KMODCTL' --root '$ROOT' watchdog allow e1000 2>/dev/null"
# compressed modules, in the tree and beyond drivers/watchdog/
mkdir -p "$ROOT/lib/modules/$KVER54/updates/drivers/watchdog/vendor" "$ROOT/lib/modules/$KVER54/extra"
: >"$ROOT/lib/modules/$KVER54/updates/drivers/watchdog/vendor/acme_dog.ko.xz"
: >"$ROOT/lib/modules/$KVER54/extra/board_wdt.ko.zst"
check watchdog-compressed sh -c "'$KMODCTL' --root '$ROOT' watchdog list --json | jq -e '.kernels[\"$KVER54\"] | map(.name) | (index(\"acme_dog\") != null and index(\"board_wdt\") != null)'"
rm -rf "$ROOT/lib/modules/$KVER54/updates/drivers/watchdog/vendor" "$ROOT/lib/modules/$KVER54/extra"

# ---- nobody cannot change anything
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
# programs nobody can run: this tree may sit below a directory only root can enter
install -m 755 "$KMODCTL" "$t/kmodctl-nobody"
install -m 755 "$KMODCTL-full" "$t/kmodctl-full" # what the front runs for every verb but depmod
install -m 644 "$SRC/tests/integration/varlink-client.py" "$t/varlink-client.py"
before=$(cd "$ROOT" && find lib/modules var/lib/kmodd sys/module -newer "$t/e1000.json" 2>/dev/null | sort | md5sum)
installed_before=$(ls "$ROOT/lib/modules/$KVER54/updates/drivers/" | sort | tr '\n' ' ')
nobody_ok=1
for call in "HandleModalias {\"modalias\":\"pci:v000010ECd00008139sv0sd0bc0sc0i0\"}" \
	"Install {\"modules\":[\"r8169\"]}" "Remove {\"packages\":[\"e1000-kmp-amd64\"]}" \
	"Ensure {\"set\":\"netfilter\"}" "Scan" "Refresh"; do
	# shellcheck disable=SC2086 # method and parameters
	r=$(as_nobody /usr/bin/python3 "$t/varlink-client.py" call "$KSOCK" io.kmodd.Manager.${call%% *} "$( [ "${call#* }" != "$call" ] && echo "${call#* }")")
	if [ "$(printf '%s' "$r" | jq -r .error)" != org.varlink.service.PermissionDenied ]; then
		nobody_ok=0
		fail "nobody-${call%% *}" "$r"
	fi
done
[ $nobody_ok = 1 ] && pass nobody-denied-every-change
check nobody-kmodctl-handle sh -c "setpriv --reuid=nobody --regid=nogroup --clear-groups -- '$t/kmodctl-nobody' --root '$ROOT' daemon handle pci:v000010ECd00008139sv0sd0bc0sc0i0 2>&1 | grep -q PermissionDenied"
check nobody-kmodctl-watchdog sh -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups -- '$t/kmodctl-nobody' --root '$ROOT' watchdog allow ib700wdt 2>/dev/null"
check nobody-may-read-status sh -c "setpriv --reuid=nobody --regid=nogroup --clear-groups -- '$t/kmodctl-nobody' --root '$ROOT' status | grep -q idle"
check nobody-changed-nothing [ "$installed_before" = "$(ls "$ROOT/lib/modules/$KVER54/updates/drivers/" | sort | tr '\n' ' ')" ] && \
	[ "$before" = "$(cd "$ROOT" && find lib/modules var/lib/kmodd sys/module -newer "$t/e1000.json" 2>/dev/null | sort | md5sum)" ]
check nobody-r8169-not-loaded test ! -d "$ROOT/sys/module/r8169"
vl Status >/dev/null
check nobody-counted [ "$(jqr '.parameters.counters.denied')" -ge 7 ]
rm -f "$t/kmodctl-nobody" "$t/kmodctl-full"

# ---- malformed Varlink: every message gets an error reply, kmodd stays up
$VLCLIENT corpus "$KSOCK" "$SRC/tests/fuzz/varlink" >"$t/corpus.txt"
bad=0
valid=" status handle-modalias monitor-pipelined "
while read -r name msgs replies errors rest; do
	case "$valid" in *" $name "*) continue ;; esac
	if [ "$name" = oversized ]; then
		# one message larger than the limit: one error, then the connection is closed
		[ "$replies" = 1 ] && [ "$errors" = 1 ] && [ "$rest" = io.kmodd.Manager.MessageTooLarge ] && continue
	elif [ "$replies" = "$msgs" ] && [ "$errors" = "$msgs" ]; then
		continue
	fi
	bad=1
	fail "malformed-$name" "$msgs messages, $replies replies, $errors errors: $rest"
done <"$t/corpus.txt"
[ $bad = 0 ] && pass "malformed-corpus-all-error-replies ($(wc -l <"$t/corpus.txt") files)"
check malformed-valid-ones-answered sh -c "grep -q '^status 1 1 0' '$t/corpus.txt' && grep -q '^monitor-pipelined 2 2 1 io.kmodd.Manager.ProtocolError' '$t/corpus.txt'"
check alive-after-corpus kill -0 "$KPID"
vl Status >/dev/null
check status-after-corpus [ "$(jqr '.parameters.state')" = idle ]
echo "# protocol errors counted: $(jqr '.parameters.counters.protocolErrors')"

# ---- connection limit (MaxConnections=64 by default)
check connection-limit sh -c "$VLCLIENT connections '$KSOCK' 80 | grep -q 'ok 64 busy 16 other 0'"
check alive-after-connections kill -0 "$KPID"

# ---- policies, reloaded with SIGHUP
mkdir -p "$ROOT/etc/kmodd"
printf '[Daemon]\nAutoInstall=off\n' >"$ROOT/etc/kmodd/kmodd.conf"
kill -HUP "$KPID"
sleep 0.3
vl HandleModalias '{"modalias":"pci:v000010ECd00008139sv0sd0bc0sc0i0"}' >/dev/null
check policy-off-refused sh -c "[ '$(jqr .parameters.result)' = refused ] && [ '$(jqr .parameters.message)' = AutoInstall=off ]"
printf '[Daemon]\nAllowedBuses=usb virtio\n' >"$ROOT/etc/kmodd/kmodd.conf"
kill -HUP "$KPID"
sleep 0.3
vl HandleModalias '{"modalias":"pci:v000010ECd00008168sv0sd0bc0sc0i0"}' >/dev/null
check policy-bus-refused sh -c "[ '$(jqr .parameters.result)' = refused ] && printf '%s' '$(jqr .parameters.message)' | grep -q AllowedBuses"
printf '[Daemon]\nAllowedVendors=pci:10ec\nAutoInstall=notify-only\n' >"$ROOT/etc/kmodd/kmodd.conf"
kill -HUP "$KPID"
sleep 0.3
vl HandleModalias '{"modalias":"pci:v000010ECd00008161sv0sd0bc0sc0i0"}' >/dev/null
check policy-notify-only sh -c "[ '$(jqr .parameters.result)' = would-install ] && [ ! -d '$ROOT/sys/module/r8169' ]"
vl HandleModalias '{"modalias":"pci:v00008086d000010D3sv0sd0bc0sc0i0"}' >/dev/null
check policy-vendor-refused sh -c "[ '$(jqr .parameters.result)' = refused ] && printf '%s' '$(jqr .parameters.message)' | grep -q AllowedVendors"
rm -f "$ROOT/etc/kmodd/kmodd.conf"
kill -HUP "$KPID"
sleep 0.3

# ---- Install and Remove through the daemon
check daemon-install sh -c "'$KMODCTL' --root '$ROOT' daemon install r8169 | grep -q 'r8169-kmp-amd64'"
check daemon-install-loaded test -d "$ROOT/sys/module/r8169"
check daemon-install-no-match sh -c "'$KMODCTL' --root '$ROOT' daemon install no_such_module_x 2>/dev/null; [ \$? = 3 ]"
check daemon-remove sh -c "'$KMODCTL' --root '$ROOT' daemon remove --force r8169-kmp-amd64 | grep -q removed"
check daemon-remove-gone test ! -e "$ROOT/lib/modules/$KVER54/updates/drivers/net/ethernet/realtek/r8169.ko"
check daemon-ensure sh -c "'$KMODCTL' --root '$ROOT' daemon ensure netfilter --json | jq -e '.result == \"installed\" and (.packages | index(\"nf_tables-kmp-amd64-6.1.190-1.x86_64\") != null)'"
check daemon-ensure-not-loaded test ! -d "$ROOT/sys/module/nf_tables"
check daemon-ensure-reason sh -c "'$KMODCTL' --root '$ROOT' why nf_tables-kmp-amd64 | grep -q 'set:netfilter'"
check daemon-ensure-again sh -c "'$KMODCTL' --root '$ROOT' daemon ensure netfilter --json | jq -e '.result == \"served\"'"
check daemon-ensure-unknown sh -c "'$KMODCTL' --root '$ROOT' daemon ensure no-such-set 2>/dev/null; [ \$? = 3 ]"
check verify-after-daemon-calls "$KMODCTL" --root "$ROOT" verify

# ---- kill -9 in the middle of an install, from outside: restarted, kmodd recovers
killed=0
for m in pci:v000010DEd000000A0sv0sd0bc0sc0i0 pci:v0000168Cd00000013sv0sd0bc0sc0i0 \
	pci:v000014E4d00001600sv0sd0bc0sc0i0 pci:v00001AF4d00001041sv0sd0bc0sc0i0; do
	$VLCLIENT call "$KSOCK" io.kmodd.Manager.HandleModalias "{\"modalias\":\"$m\"}" >/dev/null 2>&1 &
	vpid=$!
	while kill -0 $vpid 2>/dev/null; do
		[ -e "$ROOT/var/lib/kmodd/journal" ] && break
	done
	if [ -e "$ROOT/var/lib/kmodd/journal" ]; then
		kill -9 "$KPID"
		wait "$KPID" 2>/dev/null
		KPID=
		killed=1
		wait $vpid 2>/dev/null
		break
	fi
	wait $vpid 2>/dev/null
done
if [ $killed = 1 ]; then
	pass kill9-mid-install
	check kill9-journal-pending test -e "$ROOT/var/lib/kmodd/journal"
	check kill9-verify-sees-it sh -c "! '$KMODCTL' --root '$ROOT' verify >/dev/null 2>&1"
	kmodd_start >"$t/start2.log" 2>&1
	check kill9-restart-recovers grep -q 'Recovered an interrupted transaction' "$KLOG"
	check kill9-journal-gone test ! -e "$ROOT/var/lib/kmodd/journal"
	check kill9-verify-clean "$KMODCTL" --root "$ROOT" verify
	echo "# kill -9: $(grep 'Recovered an interrupted' "$KLOG" | tail -n 1 | sed 's/^kmodd: //')"
else
	skip kill9-mid-install "no install was caught with its journal written (too fast here)"
	kmodd_kill
	kmodd_start >"$t/start2.log" 2>&1
fi

# ---- SIGTERM in the middle of an install: the transaction is finished, then kmodd exits
vl HandleModalias '{"modalias":"pci:v00001969d00001062sv0sd0bc0sc0i0"}' >/dev/null &
vpid=$!
for i in $(seq 100); do
	vl Status >/dev/null
	[ "$(jqr '.parameters.state')" = busy ] && break
	sleep 0.02
done
kmodd_stop
wait $vpid 2>/dev/null
check sigterm-exit-0 [ "$KRC" = 0 ]
check sigterm-finished-install sh -c "'$KMODCTL' --root '$ROOT' list --installed | grep -q atl1c-kmp-amd64"
check sigterm-verify-clean "$KMODCTL" --root "$ROOT" verify
check sigterm-socket-removed test ! -e "$KSOCK"
check kmodctl-status-not-running sh -c "! '$KMODCTL' --root '$ROOT' status 2>&1 | grep -q idle"

# ---- socket activation with idle exit
if command -v systemd-socket-activate >/dev/null; then
	mkdir -p "$ROOT/etc/kmodd" "$ROOT/run/kmodd"
	printf '[Daemon]\nIdleExitSec=2\n' >"$ROOT/etc/kmodd/kmodd.conf"
	rm -f "$KSOCK"
	LD_PRELOAD="$SHIM" KMODD_SHIM_ROOT="$ROOT" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		systemd-socket-activate -l "$KSOCK" "$KMODD" --root "$ROOT" --no-udev >>"$KLOG" 2>&1 &
	apid=$!
	for i in $(seq 50); do [ -S "$KSOCK" ] && break; sleep 0.1; done
	vl Status >/dev/null
	check activated-by-socket [ "$(jqr '.parameters.socketActivated')" = true ]
	t0=$SECONDS
	for i in $(seq 100); do kill -0 $apid 2>/dev/null || break; sleep 0.1; done
	check idle-exit sh -c "! kill -0 $apid 2>/dev/null"
	echo "# socket-activated kmodd exited after $((SECONDS - t0)) s idle (IdleExitSec=2)"
	check idle-exit-logged grep -q 'Idle for 2s, exiting' "$KLOG"
	kill $apid 2>/dev/null
	rm -f "$ROOT/etc/kmodd/kmodd.conf"
else
	skip socket-activation "systemd-socket-activate not installed"
fi

crashed_any=$(grep -c -E 'AddressSanitizer|runtime error:|LeakSanitizer' "$KLOG")
check no-sanitizer-reports [ "$crashed_any" = 0 ]
finish
