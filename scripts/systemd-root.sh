#!/bin/sh
# Builds (once) the Debian root that make test-systemd boots with
# systemd-nspawn, from Debian's own packages, and prints its path.
# The root is cached: delete $BATON_TEST_CACHE (default
# /var/cache/baton-test) to rebuild it.
set -eu
cache=${BATON_TEST_CACHE:-/var/cache/baton-test}
suite=${BATON_TEST_SUITE:-bookworm}
mirror=${BATON_TEST_MIRROR:-http://deb.debian.org/debian}
root=$cache/$suite-root
# Bump when the package list changes, so that old caches are rebuilt.
stamp=$root/.baton-root-v1
if [ -f "$stamp" ]; then
	echo "$root"
	exit 0
fi
rm -rf "$root" "$root.tmp"
mkdir -p "$cache"
debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,dbus,iproute2,curl,netcat-openbsd,conntrack,ca-certificates \
	"$suite" "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
	tail -n 20 "$cache/debootstrap.log" >&2
	exit 1
}
# Quiet, fast boots: no getty on the console, no network wait.
rm -f "$root.tmp"/etc/systemd/system/getty.target.wants/* \
	"$root.tmp"/etc/systemd/system/multi-user.target.wants/systemd-networkd.service
# The test's driver (bind-mounted from the repository at each boot).
cat >"$root.tmp"/etc/systemd/system/baton-systemd-test.service <<'UNIT'
[Unit]
Description=baton systemd test driver
After=multi-user.target dbus.service
ConditionPathExists=/opt/baton-test/run.sh

[Service]
Type=oneshot
ExecStart=/bin/sh /opt/baton-test/run.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console
UNIT
mkdir -p "$root.tmp"/etc/systemd/system/multi-user.target.wants
ln -sf ../baton-systemd-test.service "$root.tmp"/etc/systemd/system/multi-user.target.wants/
echo baton-test >"$root.tmp"/etc/hostname
touch "$root.tmp"/.baton-root-v1
mv "$root.tmp" "$root"
echo "$root"
