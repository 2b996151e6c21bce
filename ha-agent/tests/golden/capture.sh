#!/bin/sh
# Captures the adverts keepalived sends for one golden case.
#
#   sudo ha-agent/tests/golden/capture.sh v2-pass
#
# Reads <case>/keepalived.conf, writes <case>/capture.pcap. Two network namespaces joined by a
# veth pair (va in hacodec-a runs keepalived, vb in hacodec-b runs tcpdump); nothing leaves them.
# keepalived becomes MASTER after its master-down interval, sends adverts, and on SIGTERM sends
# its priority-0 adverts (RFC 5798 §6.4.3 "Shutdown"), which the capture keeps.
set -eu
case_name=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/$case_name
run=/tmp/hacodec
mkdir -p "$run"
a=hacodec-a
b=hacodec-b

cleanup() {
    [ -f "$run/k.pid" ] && kill "$(cat "$run/k.pid")" 2>/dev/null || true
    [ -n "${tcpdump_pid:-}" ] && kill "$tcpdump_pid" 2>/dev/null || true
    ip netns del $a 2>/dev/null || true
    ip netns del $b 2>/dev/null || true
}
trap cleanup EXIT

ip netns add $a
ip netns add $b
for ns in $a $b; do
    # No duplicate address detection: addresses (link-local too) are usable at once.
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
sleep 1

ip netns exec $b tcpdump -i vb -U -s 0 -w "$dir/capture.pcap" 'ip proto 112 or ip6 proto 112' \
    2>"$run/tcpdump.log" &
tcpdump_pid=$!
sleep 1

rm -f "$run/k.pid" "$run/v.pid"
ip netns exec $a keepalived -n -l -D -P -f "$dir/keepalived.conf" -p "$run/k.pid" -r "$run/v.pid" \
    >"$run/keepalived-$case_name.log" 2>&1 &
k_pid=$!
# master-down interval (3 × advert_int + skew) then a few adverts as MASTER
sleep "${CAPTURE_SECONDS:-7}"
kill -TERM $k_pid
wait $k_pid || true
sleep 1
kill $tcpdump_pid
wait $tcpdump_pid || true
tcpdump_pid=
