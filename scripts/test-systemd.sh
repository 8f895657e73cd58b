#!/bin/sh
# make test-systemd: boots a Debian root with systemd as PID 1
# (systemd-nspawn --boot), installs the .deb given as $1 and runs
# e2e/systemd/run.sh inside as a oneshot unit. The root comes from
# scripts/systemd-root.sh (cached); each run boots a throw-away overlay
# of it.
set -eu
deb=$1
here=$(cd "$(dirname "$0")/.." && pwd)
root=$("$here/scripts/systemd-root.sh")
work=$(mktemp -d /tmp/baton-systemd.XXXXXX)
cleanup() {
	umount "$work/merged" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -p "$work/upper" "$work/ovl" "$work/merged" "$work/in" "$work/out"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/ovl" "$work/merged"
cp "$deb" "$work/in/"
# nspawn keeps its propagation directory here; without a host systemd it
# must be a mount of its own (see /work/shared/research/systemd.md).
mkdir -p /run/systemd/nspawn
mountpoint -q /run/systemd/nspawn || mount -t tmpfs tmpfs /run/systemd/nspawn
start=$(date +%s)
status=0
timeout "${BATON_TEST_TIMEOUT:-300}" systemd-nspawn -q --register=no --keep-unit --private-network \
	-D "$work/merged" -M "baton-test-$$" \
	--bind-ro="$here/e2e/systemd:/opt/baton-test" --bind-ro="$work/in:/opt/baton-in" \
	--bind="$work/out:/opt/baton-out" \
	--boot >"$work/console.log" 2>&1 || status=$?
cat "$work/out/log" 2>/dev/null || true
if [ "$(cat "$work/out/result" 2>/dev/null)" != PASS ]; then
	echo "--- container console (nspawn exit $status)"
	tail -n 40 "$work/console.log"
	echo "test-systemd: FAIL"
	exit 1
fi
echo "test-systemd: PASS ($(($(date +%s) - start))s booted)"
