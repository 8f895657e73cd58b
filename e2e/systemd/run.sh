#!/bin/sh
# make test-systemd, inside the container: systemd is PID 1 and this runs
# as a oneshot unit (baton-systemd-test.service, see
# scripts/systemd-root.sh). It installs the package, starts the shipped
# unit with its real sandbox and checks what the unit must allow. Results
# go to /opt/baton-out (bound from the host): "log" and "result".
set -u
out=/opt/baton-out
step=setup
log() { echo "[$(date +%T.%N | cut -c1-12)] $*" | tee -a $out/log; }
fail() {
	log "FAIL ($step): $*"
	{
		echo "--- systemctl status baton"
		systemctl status --no-pager baton
		echo "--- journal baton"
		journalctl --no-pager -u baton -n 80
		echo "--- journal peer"
		journalctl --no-pager -u baton-peer -n 40
	} >>$out/log 2>&1
	echo FAIL >$out/result
	exit 1
}
# waitfor SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s until it
# succeeds, or fails the test after SECONDS.
waitfor() {
	secs=$1 what=$2
	shift 2
	end=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || fail "$what: not within ${secs}s"
		sleep 0.2
	done
	log "ok: $what"
}
role() { # role SOCKET
	# The first "role" is the node's own (the peer's comes later).
	baton status --json --socket "$1" 2>/dev/null | grep -o '"role": *"[A-Z]*"' | head -n 1 | cut -d'"' -f4
}
is_role() { [ "$(role "$1")" = "$2" ]; }
prop() { systemctl show -p "$2" --value "$1"; }
has_vip() { ip -o addr show dev dummy0 | grep -q ' 10.99.0.10/24 '; }
no_vip() { ! has_vip; }

step=install
deb=$(ls /opt/baton-in/baton_*_amd64.deb)
dpkg -i "$deb" >>$out/log 2>&1 || fail "dpkg -i $deb"
baton version | tee -a $out/log | grep -q '^baton ' || fail "baton version"
for f in /lib/systemd/system/baton.service /lib/systemd/system/baton-peerings.service \
	/etc/baton/baton.yaml.example /usr/share/baton/hooks/notify-webhook; do
	[ -e "$f" ] || fail "$f not installed"
done
systemd-analyze verify /lib/systemd/system/baton.service /lib/systemd/system/baton-peerings.service >>$out/log 2>&1 ||
	fail "systemd-analyze verify"
log "ok: installed $(basename "$deb")"

step=configure
ip link add dummy0 type veth peer name dummy1 && ip addr add 10.99.0.1/24 dev dummy0 && ip link set dummy1 up && ip link set dummy0 up || fail "veth dummy0"
baton keygen --nodes nva-a,nva-b --out /etc/baton/pki >/dev/null || fail keygen
# nva-b, the peer, runs outside any sandbox from its own directory.
mkdir -p /etc/baton-peer /srv/app /srv/peer-app /run/baton-peer /var/lib/baton-peer
cp /etc/baton/pki/ca.crt /etc/baton/pki/heartbeat.key /etc/baton/pki/nva-b.* /etc/baton-peer/
common() { # common NODE PRIORITY PEER MYPORT PEERPORT DIR SOCKET STATE PKI
	cat <<YAML
node: {name: $1, priority: $2, state_dir: $8}
heartbeat: {interval: 200ms, misses: 5, listen: "127.0.0.1:${4}05", key_file: $9/heartbeat.key}
peer:
  name: $3
  paths: [{name: lo, address: "127.0.0.1:${5}05"}]
  channel: {listen: "127.0.0.1:${4}06", address: "127.0.0.1:${5}06"}
probe: {listen: "127.0.0.1:${4}44"}
api: {socket: $7}
metrics: {listen: "off"}
link: {listen: "127.0.0.1:${4}07", address: "127.0.0.1:${5}07", ca_file: $9/ca.crt, cert_file: $9/$1.crt, key_file: $9/$1.key}
sessions: {enabled: true}
sync:
  interval: 2s
  sets:
    - name: app
      dir: $6
      files: ["*.conf"]
      owner: "1234:2345"
      mode: "0640"
      validate: "test -s {file}"
      apply: "date >$6/applied"
YAML
}
{
	common nva-a 150 nva-b 150 160 /srv/app /run/baton/baton.sock /var/lib/baton /etc/baton/pki
	cat <<'YAML'
vip:
  addresses: [{address: 10.99.0.10/24, interface: dummy0}]
  conflict_check: false
hooks:
  active: [/usr/share/baton/hooks/notify-webhook, /etc/baton/hooks/mark]
  standby: [/etc/baton/hooks/mark]
YAML
} >/etc/baton/baton.yaml
common nva-b 100 nva-a 160 150 /srv/peer-app /run/baton-peer/baton.sock /var/lib/baton-peer /etc/baton-peer >/etc/baton-peer/baton.yaml
mkdir -p /etc/baton/hooks
printf '#!/bin/sh\necho "$BATON_OLD_STATE $BATON_NEW_STATE $BATON_REASON" >>/run/baton/hook-marks\n' >/etc/baton/hooks/mark
chmod 0755 /etc/baton/hooks/mark
echo "http://127.0.0.1:18080/hook" >/etc/baton/notify.url
baton validate >>$out/log 2>&1 || fail "validate nva-a"
baton validate --config /etc/baton-peer/baton.yaml >>$out/log 2>&1 || fail "validate nva-b"
# Config sync into /srv/app needs the path in the sandbox: a drop-in.
mkdir -p /etc/systemd/system/baton.service.d
printf '[Service]\nReadWritePaths=/srv/app\n' >/etc/systemd/system/baton.service.d/sync-paths.conf
systemctl daemon-reload
# The webhook receiver: one request, answered 204.
(printf 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n' | nc -l 127.0.0.1 18080 >$out/webhook.txt) &

step=start
systemd-run -q --unit=baton-peer -p Type=notify -p NotifyAccess=main \
	baton run --config /etc/baton-peer/baton.yaml || fail "starting the peer"
start=$(date +%s.%N)
timeout 30 systemctl start baton || fail "systemctl start baton"
log "ok: systemctl start returned after $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $start}")s, READY (Type=notify): $(prop baton StatusText)"
[ "$(prop baton ActiveState)" = active ] || fail "baton not active after start"
waitfor 15 "nva-a ACTIVE" is_role /run/baton/baton.sock ACTIVE
waitfor 15 "nva-b STANDBY" is_role /run/baton-peer/baton.sock STANDBY

step=vip
waitfor 10 "VIP 10.99.0.10 on dummy0 (CAP_NET_ADMIN)" has_vip

step=hooks
waitfor 15 "notify-webhook posted JSON" grep -q '"to":"ACTIVE"' $out/webhook.txt
waitfor 10 "mark hook ran (writes /run/baton)" grep -q ' ACTIVE ' /run/baton/hook-marks

step=conntrack
conntrack -I -p tcp --src 10.99.0.2 --dst 10.99.0.3 --sport 40000 --dport 443 --state ESTABLISHED \
	--timeout 600 >/dev/null 2>&1 || fail "conntrack -I"
waitfor 15 "nva-a's conntrack watcher sent a connection to nva-b (netlink under the sandbox)" \
	sh -c '[ "$(baton sessions --json --socket /run/baton-peer/baton.sock | grep -o "\"held\": *[0-9]*" | head -n 1 | tr -dc 0-9)" -ge 1 ]'

step=configsync
echo "listen 443" >/srv/peer-app/app.conf
owner() { [ "$(stat -c '%u:%g %a' /srv/app/app.conf 2>/dev/null)" = "1234:2345 640" ]; }
waitfor 20 "config sync wrote /srv/app/app.conf as the set's owner 1234:2345, mode 640 (chown in the sandbox)" owner
waitfor 10 "config sync's apply command ran in /srv/app" test -s /srv/app/applied

step=stop
systemctl stop baton || fail "systemctl stop"
journalctl --no-pager -u baton | grep -q 'stepping down for shutdown' || fail "no step-down logged on stop"
no_vip || fail "VIP still on dummy0 after stop"
waitfor 5 "nva-b ACTIVE after nva-a stopped" is_role /run/baton-peer/baton.sock ACTIVE
log "ok: nva-b took over: $(baton status --socket /run/baton-peer/baton.sock 2>&1 | head -n 3 | tr '\n' ' ')"

step=watchdog
systemctl start baton || fail "second start"
waitfor 15 "nva-a STANDBY again" is_role /run/baton/baton.sock STANDBY
pid=$(prop baton MainPID)
restarts=$(prop baton NRestarts)
kill -STOP "$pid"
log "SIGSTOP to baton (pid $pid); WatchdogSec=$(prop baton WatchdogUSec)"
restarted() { [ "$(prop baton NRestarts)" -gt "$restarts" ] && [ "$(prop baton MainPID)" != "$pid" ] && [ "$(prop baton ActiveState)" = active ]; }
waitfor 40 "the watchdog restarted the stopped daemon" restarted
log "new pid $(prop baton MainPID), NRestarts $(prop baton NRestarts)"

step=upgrade
# Reinstalling is an upgrade for dpkg: a valid configuration restarts the
# daemon, an invalid one leaves the running daemon alone.
pid=$(prop baton MainPID)
dpkg -i "$deb" >>$out/log 2>&1 || fail "upgrade with a valid configuration"
[ "$(prop baton MainPID)" != "$pid" ] || fail "upgrade did not restart baton"
[ "$(prop baton ActiveState)" = active ] || fail "baton not active after the upgrade"
log "ok: upgrade with a valid configuration restarted baton"
pid=$(prop baton MainPID)
cp /etc/baton/baton.yaml /etc/baton/baton.yaml.good
echo "heartbeat: {interval: fast}" >>/etc/baton/baton.yaml
dpkg -i "$deb" >$out/upgrade-invalid.txt 2>&1 || fail "upgrade with an invalid configuration failed"
cat $out/upgrade-invalid.txt >>$out/log
[ "$(prop baton MainPID)" = "$pid" ] || fail "upgrade restarted baton on an invalid configuration"
grep -q "does not pass 'baton validate'" $out/upgrade-invalid.txt || fail "upgrade did not say why it kept the old daemon"
mv /etc/baton/baton.yaml.good /etc/baton/baton.yaml
log "ok: upgrade with an invalid configuration kept the running daemon"

step=remove
systemctl stop baton baton-peer
dpkg -r baton >>$out/log 2>&1 || fail "dpkg -r"
[ -f /etc/baton/baton.yaml ] && [ -d /var/lib/baton ] || fail "remove deleted /etc/baton or /var/lib/baton"
[ ! -e /usr/bin/baton ] || fail "/usr/bin/baton left after remove"
log "ok: dpkg -r kept /etc/baton and /var/lib/baton"
echo PASS >$out/result
