#!/bin/sh
# Captures the adverts FRR's vrrpd sends for one golden case (frr-*).
#
#   sudo ha-agent/tests/golden/capture-frr.sh frr-v3-ipv4
#
# Reads <case>/frr.conf (vrrpd's, on interface va), writes <case>/capture.pcap. The same two
# namespaces as capture.sh (va in hacodec-a runs zebra + vrrpd, vb in hacodec-b runs tcpdump);
# vrrpd sends from macvlans on va carrying the virtual MACs, the IPv6 one with va's EUI-64
# link-local (fe80::ff:fe00:a, set by hand: the golden test plans with va's facts). vrrpd
# becomes master after its master-down interval and on SIGTERM sends its priority-0 advert.
# Nothing leaves the namespaces. FRR's daemons run as root only if root is in group frrvty.
set -eu
case_name=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/$case_name
run=/tmp/hacodec-frr
rm -rf "$run"
mkdir -p "$run"
a=hacodec-a
b=hacodec-b
frr=/usr/lib/frr

cleanup() {
    for d in vrrpd zebra; do
        [ -f "$run/$d.pid" ] && kill "$(cat "$run/$d.pid")" 2>/dev/null || true
    done
    [ -n "${tcpdump_pid:-}" ] && kill "$tcpdump_pid" 2>/dev/null || true
    ip netns del $a 2>/dev/null || true
    ip netns del $b 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT

ip netns add $a
ip netns add $b
for ns in $a $b; do
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n $ns link set lo up
done
ip -n $a link add va address 02:00:00:00:00:0a type veth peer name vb netns $b address 02:00:00:00:00:0b
ip -n $a addr add 192.0.2.1/24 dev va
ip -n $a addr add 2001:db8::1/64 dev va
ip -n $b addr add 192.0.2.2/24 dev vb
ip -n $b addr add 2001:db8::2/64 dev vb
ip -n $a link set va up
ip -n $b link set vb up
vrid=$(sed -n 's/^ *vrrp \([0-9]*\) .*/\1/p' "$dir/frr.conf" | head -n 1)
hex=$(printf %02x "$vrid")
ip -n $a link add vrrp4-$vrid link va type macvlan mode bridge
ip -n $a link set vrrp4-$vrid address 00:00:5e:00:01:$hex addrgenmode none up
ip -n $a link add vrrp6-$vrid link va type macvlan mode bridge
ip -n $a link set vrrp6-$vrid address 00:00:5e:00:02:$hex addrgenmode none up
ip -n $a addr add fe80::ff:fe00:a/64 dev vrrp6-$vrid nodad
sleep 1

ip netns exec $b tcpdump -i vb -U -s 0 -w "$dir/capture.pcap" 'ip proto 112 or ip6 proto 112' \
    2>"$run/tcpdump.log" &
tcpdump_pid=$!
sleep 1

touch "$run/zebra.conf"
daemon() {
    ip netns exec $a "$frr/$1" -d -u root -g root -P 0 -i "$run/$1.pid" -z "$run/zserv.api" \
        --vty_socket "$run" -f "$2" --log "file:$run/$1.log"
}
daemon zebra "$run/zebra.conf"
sleep 1
daemon vrrpd "$dir/frr.conf"
# master-down interval (3 × advert interval + skew) then a few adverts as master
sleep "${CAPTURE_SECONDS:-7}"
kill -TERM "$(cat "$run/vrrpd.pid")"
sleep 1
kill $tcpdump_pid
wait $tcpdump_pid || true
tcpdump_pid=
