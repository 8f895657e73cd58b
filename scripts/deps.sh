#!/bin/sh
# Installs the Debian packages baton's tests and benchmarks need, when missing.
# usage: scripts/deps.sh test|test-systemd|bench-failover|bench-sessions|bench-routes|bench-events
set -eu
want=""
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || want="$want $2"
}
case "${1:-test}" in
test)
	need ip iproute2
	need ping iputils-ping
	need virt-xml-validate libvirt-clients
	need xmllint libxml2-utils
	need ovsdb-server openvswitch-switch
	need nft nftables
	need iperf3 iperf3
	need conntrack conntrack
	need vtysh frr
	need bird bird2
	need etcd etcd-server
	need cloud-init cloud-init
	need dpkg-deb dpkg
	need chromium chromium
	;;
test-systemd)
	need systemd-nspawn systemd-container
	need debootstrap debootstrap
	;;
bench-sessions)
	need ip iproute2
	need nft nftables
	need conntrack conntrack
	need conntrackd conntrackd
	;;
bench-routes)
	# Pacemaker's aws-vpc-move-ip with Debian's awscli (a pyenv aws on
	# PATH is not Debian's: look at the paths the benchmark runs).
	[ -x /usr/lib/ocf/resource.d/heartbeat/aws-vpc-move-ip ] || want="$want resource-agents"
	[ -x /usr/bin/aws ] || want="$want awscli"
	need ip iproute2
	need curl curl
	;;
bench-events)
	need ip iproute2
	need nft nftables
	;;
bench-failover|bench-vip)
	need ip iproute2
	need keepalived keepalived
	;;
esac
if [ "${1:-test}" = test ]; then
	need node nodejs
	need npm npm
fi
if [ -n "$want" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages:$want (run as root to install them)" >&2
		exit 1
	fi
	echo "installing:$want"
	export DEBIAN_FRONTEND=noninteractive
	# Wait for another apt (a parallel install) instead of failing on its lock.
	apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $want >/dev/null
fi

# Azurite (Azure Blob emulator) for the witness tests, from the npm registry.
if [ "${1:-test}" = test ] && [ ! -d internal/witness/testdata/azurite/node_modules/azurite ]; then
	echo "installing azurite (npm)"
	npm ci --silent --no-audit --no-fund --prefix internal/witness/testdata/azurite >/dev/null
fi
