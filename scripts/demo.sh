#!/usr/bin/env bash
# The README's "run" command: a protected link between two hosts on one machine.
#
# Two network namespaces (host A 192.0.2.1, host B 192.0.2.2) joined by a veth pair, an
# ipsecd in each; SAs loaded with `ipseckey -f` (fresh random AES-128-GCM keys) and policy
# with `ipsecconf -a`; then a ping and a TCP transfer across, the per-SA counters, a
# cleartext packet that B sends around its ipsecd being dropped by A's policy (with its
# reason, and the policy logger's record of it), and the capture of the wire, in which only ESP carries the hosts' traffic.
# Everything it creates is removed at the end, also on failure or Ctrl-C.
#
# Needs root (network namespaces, TUN, nftables). Installs iproute2, iputils-ping,
# tcpdump and nftables with apt when they are missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E "$0" "$@"
    fi
    echo "demo.sh needs root (network namespaces, TUN devices, nftables)" >&2
    exit 1
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v nft >/dev/null 2>&1 || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

say "building ipsecd, ipseckey, ipsecconf, ipsecstat (release)"
cargo build --release --quiet -p ipsecd -p ipsec-tools
BIN="$ROOT/target/release"

A=ironswan-demo-a-$$
B=ironswan-demo-b-$$
WORK=$(mktemp -d /tmp/ironswan-demo.XXXXXX)
chmod 700 "$WORK"
PIDS=()

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$A" 2>/dev/null
    ip netns del "$B" 2>/dev/null
    [ -n "${IRONSWAN_DEMO_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say "two hosts: namespaces $A (192.0.2.1) and $B (192.0.2.2), joined by a veth pair"
ip netns add "$A"
ip netns add "$B"
ip link add veth-a netns "$A" type veth peer name veth-b netns "$B"
ip -n "$A" addr add 192.0.2.1/24 dev veth-a
ip -n "$B" addr add 192.0.2.2/24 dev veth-b
for n in "$A" "$B"; do
    ip -n "$n" link set lo up
done
ip -n "$A" link set veth-a up
ip -n "$B" link set veth-b up

say "an ipsecd in each (TUN ipsec0, PF_KEY and control sockets under $WORK)"
for h in a b; do
    ns=$A
    [ "$h" = b ] && ns=$B
    # The policy logger (Solaris svc:/network/ipsec/policy:logger) records every drop.
    printf 'log_file=%s\nlog_level=message+packet+stack\n' "$WORK/policy-$h.log" >"$WORK/logger-$h.conf"
    ip netns exec "$ns" "$BIN/ipsecd" --tun ipsec0 \
        --pfkey-socket "$WORK/$h.pfkey" --control-socket "$WORK/$h.control" \
        --logger-config "$WORK/logger-$h.conf" --logger-enable \
        >"$WORK/ipsecd-$h.log" 2>&1 &
    PIDS+=($!)
done
for h in a b; do
    for _ in $(seq 50); do
        [ -S "$WORK/$h.control" ] && break
        sleep 0.1
    done
    [ -S "$WORK/$h.control" ] || { cat "$WORK/ipsecd-$h.log"; exit 1; }
done

key() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# AES-128-GCM: 16 key bytes + 4 salt bytes per SA, fresh for every run.
umask 077
cat >"$WORK/sas" <<EOF
# A -> B and B -> A, ESP AES-128-GCM (RFC 4106), transport mode
add esp spi 0x1001 src 192.0.2.1 dst 192.0.2.2 encr_alg aes-gcm encrkey $(key 20)
add esp spi 0x1002 src 192.0.2.2 dst 192.0.2.1 encr_alg aes-gcm encrkey $(key 20)
EOF
cat >"$WORK/policy-a" <<'EOF'
# Everything between the two hosts is protected with ESP.
{laddr 192.0.2.1 raddr 192.0.2.2} ipsec {encr_algs aes-gcm sa shared}
EOF
cat >"$WORK/policy-b" <<'EOF'
{laddr 192.0.2.2 raddr 192.0.2.1} ipsec {encr_algs aes-gcm sa shared}
EOF

say "SAs with ipseckey -f (keys never on the command line), policy with ipsecconf -a"
for h in a b; do
    IRONSWAN_PFKEY_SOCKET="$WORK/$h.pfkey" "$BIN/ipseckey" -f "$WORK/sas"
    IRONSWAN_CONTROL_SOCKET="$WORK/$h.control" "$BIN/ipsecconf" -q -a "$WORK/policy-$h"
done
echo "host A's SADB (ipseckey -p dump esp: keys shown as X):"
IRONSWAN_PFKEY_SOCKET="$WORK/a.pfkey" "$BIN/ipseckey" -p dump esp | awk 'NR <= 24 { print "    " $0 }'
echo "host A's policy (ipsecconf -l):"
IRONSWAN_CONTROL_SOCKET="$WORK/a.control" "$BIN/ipsecconf" -l | sed 's/^/    /'
sleep 0.5

say "capturing the wire (veth on B's side)"
ip netns exec "$B" tcpdump -n -s 128 -B 65536 -i veth-b -w "$WORK/wire.pcap" 2>"$WORK/tcpdump.log" &
TCPDUMP=$!
PIDS+=("$TCPDUMP")
for _ in $(seq 50); do
    grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && break
    sleep 0.1
done

say "ping from A to B"
ip netns exec "$A" ping -c 3 -i 0.2 192.0.2.2

say "TCP transfer of 20 MB from A to B"
ip netns exec "$B" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.2", 5001)); s.listen(1); c, _ = s.accept(); n = 0
while True:
    d = c.recv(1 << 16)
    if not d: break
    n += len(d)
print(f"    B received {n} bytes")' &
SERVER=$!
sleep 0.3
ip netns exec "$A" python3 -c '
import socket, time
s = socket.create_connection(("192.0.2.2", 5001)); t = time.time()
s.sendall(b"x" * 20_000_000); s.close(); dt = time.time() - t
print(f"    A sent 20000000 bytes in {dt:.2f} s ({20e6 * 8 / dt / 1e9:.2f} Gbit/s)")'
wait "$SERVER"

say "a cleartext packet: B sends UDP to A around its ipsecd (firewall mark), A must drop it"
ip netns exec "$B" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 36, 0x1500)  # SO_MARK: the route ipsecd itself uses
s.sendto(b"this should have been encrypted", ("192.0.2.1", 9))
print("    sent 31 bytes of cleartext UDP from B to A port 9")'
sleep 0.3

say "host A: counters (ipsecstat), per SA and per drop reason"
IRONSWAN_CONTROL_SOCKET="$WORK/a.control" "$BIN/ipsecstat" | sed 's/^/    /'
drops=$(IRONSWAN_CONTROL_SOCKET="$WORK/a.control" "$BIN/ipsecstat" | awk '/clear_drop_in_spd_got_clear/ {s += $2} END {print s + 0}')
echo "    -> cleartext dropped by policy on A (reason spd_got_clear): $drops packet(s)"

say "host A: the policy logger's record of that drop ($WORK/policy-a.log)"
sed 's/^/    /' "$WORK/policy-a.log"
grep -q spd_got_clear "$WORK/policy-a.log" || { echo "    (no record of the drop)"; exit 1; }

# Give the capture time to write out what the transfer queued before stopping it.
sleep 1
kill -INT "$TCPDUMP" 2>/dev/null || true
wait "$TCPDUMP" 2>/dev/null || true

say "the wire: what tcpdump saw between A and B"
tcpdump -n -r "$WORK/wire.pcap" 2>/dev/null >"$WORK/wire.txt"
esp=$(grep -c 'ESP(' "$WORK/wire.txt" || true)
clear_ip=$(grep -E ' IP6? ' "$WORK/wire.txt" | grep -v 'ESP(' | grep -vE 'ICMP6, (neighbor|router|multicast)|ff02::' || true)
echo "    frames: $(wc -l <"$WORK/wire.txt") in all, $esp ESP ($(grep -o '[0-9]* packets dropped by kernel' "$WORK/tcpdump.log" || echo 'none dropped by the capture'))"
echo "    first ESP frames:"
awk '/ESP\(/ && n++ < 4 { print "      " $0 }' "$WORK/wire.txt"
echo "    IP frames that are not ESP (the deliberate cleartext packet only):"
if [ -n "$clear_ip" ]; then
    echo "$clear_ip" | sed 's/^/      /'
else
    echo "      (none)"
fi
others=$(echo "$clear_ip" | grep -v 'UDP, length 31' | grep -c . || true)
if [ "$esp" -gt 0 ] && [ "$others" -eq 0 ] && [ "$drops" -ge 1 ]; then
    say "result: OK (the hosts' traffic crossed the wire only as ESP; the cleartext packet was dropped)"
else
    say "result: UNEXPECTED (see above)"
    exit 1
fi
