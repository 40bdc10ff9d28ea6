#!/usr/bin/env bash
# Tunnel throughput and daemon memory (issue 6): TCP through an AES-128-GCM tunnel between two
# network namespaces joined by a veth pair, next to the other user-space tunnels on the same
# veth pair in the same run, and plain veth as the ceiling.
#
#   scripts/bench-tunnel.sh [--runs N] [--seconds S] [--with-peers]
#                           [--only ironswan|veth|wireguard-go|strongswan]...
#
#   --runs N       iperf3 runs per path (default 3); the table gives the median and min-max
#   --seconds S    length of each run (default 10)
#   --with-peers   also wireguard-go and strongSwan's charon with kernel-libipsec (installed
#                  with apt-get when missing)
#   --only PATH    measure only this path (may be repeated; implies --with-peers for a peer)
#   --no-memory    skip the 10,000 SA / 10,000 rule memory test
#   --profile      after the runs, more ironswan runs: `perf record` of both ipsecds, system
#                  calls and scheduler waits counted, `strace -c` (reports in target/bench-tunnel/)
#   --nice N       run the daemons and iperf3 at this niceness (default 0; e.g. -10 on a
#                  machine busy with other work, to see the paths with less CPU contention).
#                  With autogroup scheduling (kernel.sched_autogroup_enabled=1) nice only
#                  ranks tasks of one session, so the script then runs in a session of its own
#                  (setsid; Ctrl-C from the terminal no longer reaches it) and gives that
#                  session's autogroup the niceness too.
#
# Needs root. Everything it creates carries the prefix ibt<pid>: namespaces ibt<pid>-a and
# ibt<pid>-b (and ibt<pid>-m for the memory test), the veth pair, the wireguard interfaces;
# an exit trap kills every daemon it started and removes them. Results: the table on stdout,
# the raw files in target/bench-tunnel/ (iperf3 JSON, daemon logs, captures).
#
# Paths (all single-stream `iperf3 -c` from namespace a to a server in namespace b):
#   veth          10.201.0.1 -> 10.201.0.2, the veth itself
#   ironswan      10.201.1.1 -> 10.201.1.2 (second addresses on the veth): ipsecd in each
#                 namespace on a TUN device, ESP transport mode, AES-128-GCM (16-octet ICV),
#                 manual keys (--keys-file) and ipsecconf policy (--policy-file)
#   wireguard-go  10.202.0.1 -> 10.202.0.2 over wireguard-go (Debian) on UDP 10.201.0.x:51820
#   strongswan    10.203.0.1 -> 10.203.0.2 (on lo): charon-systemd (Debian) with
#                 kernel-libipsec, IKEv2 PSK between 10.201.0.1 and 10.201.0.2, ESP tunnel
#                 mode AES-128-GCM-16 (libipsec always encapsulates ESP in UDP 4500)
# The paths use distinct addresses, so all tunnels stay up together and the runs interleave
# (run 1 of every path, then run 2, ...): drift of the shared machine hits every path alike.
# Before measuring, a ping through each tunnel is captured on the veth to check that it is
# encrypted (ESP for ironswan, UDP 4500 for strongSwan, UDP 51820 for wireguard-go, no clear
# ICMP).
#
# Memory: ipsecd's VmRSS before any traffic (idle, 2 SAs, 1 rule) and after the runs (and its
# VmHWM); then a third ipsecd (namespace ibt<pid>-m, its own TUN) started with 10,000 SAs
# (--keys-file) and 10,000 policy rules (--policy-file, distinct /32 remote addresses) and its
# VmRSS once its routes are in. Bars: idle under 20 MiB, loaded under 100 MiB.
#
#   --ironswan-encap udp|esp  ironswan's SAs carry ESP in UDP (default: sent with UDP GSO,
#                  received with GRO) or plain ESP (raw sockets, packet by packet)
#   --logger-drops two more ironswan paths, interleaved with the others: during each run a side
#                  sender in namespace a injects ESP with an unknown SPI toward b's first
#                  address 10.201.0.2 (outside the policy, so a's ipsecd does not protect it; in
#                  the tunnel's own encapsulation, so b's data plane receives it on the tunnel's
#                  socket and drops it as esp_no_sa) at 1% of the
#                  packet rate of the preceding plain ironswan run; `ironswan-drop` runs with
#                  b's policy logger disabled, `ironswan-drop-log` with it enabled at
#                  message+packet (log_interval_ms 0: every drop is logged; with the default
#                  1000 ms only one record a second would be). The dropped packets come on
#                  top of the TCP stream (they do not cut its packets). b's logger counters
#                  (log_written, log_queue_full, log_rate_limited) go to logger-counters.txt.
#   --ironswan-workers LIST  more ironswan paths, interleaved with the others: `ironswan-wN`
#                  for each N of the comma-separated LIST runs with both ipsecds' data-plane
#                  crypto on N threads (control request `workers N` before the run; the plain
#                  `ironswan` path sets the daemons' start value back before each of its runs)
#
# Bars of issue 6: ironswan at least 10x strongSwan and at least 5x wireguard-go. The script
# exits 0 when a bar is missed (it is a measurement) and says which bars pass.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

RUNS=3
SECONDS_PER_RUN=10
WITH_PEERS=0
ONLY=()
MEMORY=1
PROFILE=0
ENCAP=udp
NICE=0
LOGGER_DROPS=0
WORKERS_LIST=""
ARGS=("$@")
usage() { sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
        --with-peers) WITH_PEERS=1; shift ;;
        --only) ONLY+=("$2"); shift 2 ;;
        --no-memory) MEMORY=0; shift ;;
        --profile) PROFILE=1; shift ;;
        --nice) NICE="$2"; shift 2 ;;
        --ironswan-encap) ENCAP="$2"; shift 2 ;;
        --logger-drops) LOGGER_DROPS=1; shift ;;
        --ironswan-workers) WORKERS_LIST="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done
case "${NICE#-}" in ''|*[!0-9]*) echo "--nice takes a number" >&2; exit 2 ;; esac
case "$ENCAP" in udp|esp) ;; *) echo "--ironswan-encap takes udp or esp" >&2; exit 2 ;; esac
case "$RUNS$SECONDS_PER_RUN" in *[!0-9]*) echo "--runs and --seconds take numbers" >&2; exit 2 ;; esac
if [ "$RUNS" -lt 1 ] || [ "$SECONDS_PER_RUN" -lt 1 ]; then echo "--runs and --seconds must be >= 1" >&2; exit 2; fi

PATHS=()
if [ ${#ONLY[@]} -gt 0 ]; then
    for p in "${ONLY[@]}"; do
        case "$p" in
            veth|ironswan) ;;
            wireguard-go|strongswan) WITH_PEERS=1 ;;
            *) echo "--only: unknown path $p (ironswan, veth, wireguard-go, strongswan)" >&2; exit 2 ;;
        esac
    done
    for p in veth ironswan wireguard-go strongswan; do
        for q in "${ONLY[@]}"; do [ "$p" = "$q" ] && PATHS+=("$p"); done
    done
    MEMORY_DEFAULT=0
    for q in "${ONLY[@]}"; do [ "$q" = ironswan ] && MEMORY_DEFAULT=1; done
    [ "$MEMORY_DEFAULT" = 1 ] || MEMORY=0
else
    PATHS=(veth ironswan)
    [ "$WITH_PEERS" = 1 ] && PATHS+=(wireguard-go strongswan)
fi
want() { local p; for p in "${PATHS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
if [ "$LOGGER_DROPS" = 1 ]; then
    want ironswan || PATHS+=(ironswan)
    PATHS+=(ironswan-drop ironswan-drop-log)
fi
WORKER_PATHS=()
if [ -n "$WORKERS_LIST" ]; then
    want ironswan || PATHS+=(ironswan)
    for n in ${WORKERS_LIST//,/ }; do
        case "$n" in ''|*[!0-9]*) echo "--ironswan-workers takes numbers (e.g. 1,2)" >&2; exit 2 ;; esac
        WORKER_PATHS+=("ironswan-w$n")
    done
    PATHS+=("${WORKER_PATHS[@]}")
fi

if [ "$(id -u)" != 0 ]; then
    echo "bench-tunnel.sh needs root (network namespaces, TUN devices, raw sockets)" >&2
    exit 1
fi
if [ "$NICE" != 0 ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
    if [ -z "${BENCH_TUNNEL_SESSION:-}" ]; then
        BENCH_TUNNEL_SESSION=1 exec setsid -w "$0" "${ARGS[@]}"
    fi
    echo "$NICE" >/proc/self/autogroup
fi

# section, note, apt_install, start_bg, wait_for, rss_kib, hwm_kib, machine_ticks, HZ
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"

section "packages and build"
apt_install iperf3 iproute2 tcpdump iputils-ping python3
if [ "$WITH_PEERS" = 1 ]; then
    want wireguard-go && apt_install wireguard-go wireguard-tools
    # charon-systemd: charon without the fixed /var/run/charon.pid, so one per namespace can
    # run; libcharon-extra-plugins has kernel-libipsec; the standard plugins have openssl
    # (AES-GCM with AES-NI) and gcm.
    want strongswan && apt_install charon-systemd strongswan-swanctl libcharon-extra-plugins \
        libstrongswan-standard-plugins
fi
cargo build --release -q -p ipsecd -p ipsec-tools
# The tree the binaries were built from (others may edit and rebuild it during the run).
VERSION="$(git describe --always --dirty 2>/dev/null || echo '?')"
for v in iperf3 wireguard-go charon-systemd; do
    command -v "$v" >/dev/null && note "$v: $(dpkg-query -W -f='${Version}' "$( [ "$v" = charon-systemd ] && echo charon-systemd || echo "$v")" 2>/dev/null || true)"
done

# ---- names, work directory, cleanup ----------------------------------------------------------
ID=$(( $$ % 100000 ))
P="ibt$ID"
NSA="$P-a"
NSB="$P-b"
NSM="$P-m"
VA="${P}a"
VB="${P}b"
WGA="${P}wa"
WGB="${P}wb"
OUT="$ROOT/target/bench-tunnel"
rm -rf "$OUT"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-tunnel.XXXXXX")"
chmod 700 "$WORK"
# Private copies: a rebuild of target/release during the run changes nothing here.
cp "$ROOT/target/release/ipsecd" "$ROOT/target/release/ipsecstat" "$WORK/"
IPSECD="$WORK/ipsecd"
PIDS=()

cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM
    set +e
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # Anything else still running in our namespaces (started by this script).
    for ns in "$NSA" "$NSB" "$NSM"; do
        ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
    done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for ns in "$NSA" "$NSB" "$NSM"; do
        ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -f "/var/run/wireguard/$WGA.sock" "/var/run/wireguard/$WGB.sock"
    # Keep the logs next to the results.
    cp -f "$WORK"/*.log "$OUT"/ 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ina() { ip netns exec "$NSA" "$@"; }
# ina_nice CMD...: in namespace a at the benchmark's niceness (the iperf3 clients)
ina_nice() { ip netns exec "$NSA" nice -n "$NICE" "$@"; }
inb() { ip netns exec "$NSB" "$@"; }
# CPU ticks (user + system, threads included) of each given pid, comma-separated.
cpu_ticks() {
    local out="" pid t
    for pid in "$@"; do
        t=0
        [ -r "/proc/$pid/stat" ] && t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat")
        out="$out${out:+,}$t"
    done
    echo "${out:-0}"
}
# Scheduler statistics summed over every thread of the given pid: ns on a CPU, ns waiting
# runnable for a CPU, timeslices.
schedstat() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{r += $1; w += $2; n += $3} END {printf "%.0f %.0f %.0f\n", r, w, n}'; }
hexkey() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# ---- namespaces and veth -----------------------------------------------------------------------
section "namespaces $NSA / $NSB over veth $VA / $VB"
ip netns add "$NSA"
ip netns add "$NSB"
ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB"
for side in a b; do
    ns="$P-$side"; dev="$P$side"; n=1; [ "$side" = b ] && n=2
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip addr add "10.201.0.$n/24" dev "$dev"
    ip netns exec "$ns" ip addr add "10.201.1.$n/24" dev "$dev"
    ip netns exec "$ns" ip link set "$dev" up
done
wait_for 5 ina ping -c1 -W1 10.201.0.2
wait_for 5 ina ping -c1 -W1 10.201.1.2

# iperf3 server in b for every path.
start_bg "$NSB" "$WORK/iperf3-server.log" iperf3 -s
wait_for 5 inb sh -c "ss -ltn | grep -q ':5201 '"

# capture_check NAME DST FILTER_ENCRYPTED: pings DST from a while capturing on b's veth; the
# capture must show packets matching FILTER_ENCRYPTED and no clear ICMP between the tunnel's
# addresses.
capture_check() {
    local name="$1" dst="$2" filter="$3" cap="$WORK/capture-$1.txt"
    ip netns exec "$NSB" timeout 5 tcpdump -l -n -i "$VB" -c 40 >"$cap" 2>"$WORK/capture-$name.err" &
    local tpid=$!
    wait_for 3 grep -q "listening on" "$WORK/capture-$name.err" || sleep 1
    ina ping -c 3 -i 0.2 -W 1 "$dst" >"$WORK/ping-$name.txt" 2>&1 || true
    sleep 0.3
    kill -INT "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    cp "$cap" "$OUT/capture-$name.txt"
    local enc clear
    enc=$(grep -cE "$filter" "$cap" || true)
    clear=$(grep -cE "ICMP echo" "$cap" || true)
    local replies
    replies=$(grep -c "bytes from" "$WORK/ping-$name.txt" || true)
    note "$name: ping through the tunnel: $replies/3 replies; on the veth: $enc encrypted packet(s), $clear clear ICMP echo(s)"
    [ "$replies" -gt 0 ] && [ "$enc" -gt 0 ] && [ "$clear" = 0 ]
}

declare -A DST DAEMONS READY
DST[veth]=10.201.0.2
DST[ironswan]=10.201.1.2
DST[wireguard-go]=10.202.0.2
DST[strongswan]=10.203.0.2
DAEMONS[veth]=""
READY[veth]=1

# ---- ironswan ------------------------------------------------------------------------------------
IPSECD_A='' IPSECD_B=''
if want ironswan; then
    section "ironswan: ipsecd in each namespace, ESP transport AES-128-GCM ($ENCAP)"
    k1=$(hexkey 20); k2=$(hexkey 20)
    # ESP in UDP (RFC 3948, on port 4501 so that strongSwan keeps 4500) lets ipsecd send
    # runs of packets with UDP GSO and receive them with GRO; plain ESP goes packet by
    # packet through raw sockets.
    ENCAP_OPT=""
    NATT_PORT=0
    if [ "$ENCAP" = udp ]; then
        ENCAP_OPT="encap udp nat_lport 4501 nat_rport 4501"
        NATT_PORT=4501
    fi
    cat >"$WORK/ironswan.keys" <<EOF
# AES-128-GCM with a 16-octet ICV: 16 key bytes + 4 salt bytes
add esp spi 0x1001 src 10.201.1.1 dst 10.201.1.2 $ENCAP_OPT encr_alg aes-gcm encrkey $k1 replay 1024
add esp spi 0x1002 src 10.201.1.2 dst 10.201.1.1 $ENCAP_OPT encr_alg aes-gcm encrkey $k2 replay 1024
EOF
    chmod 600 "$WORK/ironswan.keys"
    echo "{laddr 10.201.1.1 raddr 10.201.1.2} ipsec {encr_algs aes-gcm sa shared}" >"$WORK/ironswan-a.conf"
    echo "{laddr 10.201.1.2 raddr 10.201.1.1} ipsec {encr_algs aes-gcm sa shared}" >"$WORK/ironswan-b.conf"
    # b's policy logger (disabled at start; the --logger-drops paths switch it).
    printf 'log_file=%s\nlog_level=message+packet\nlog_interval_ms=0\n' "$WORK/policy-b.log" >"$WORK/logger-b.conf"
    for side in a b; do
        LOGGER_OPT=()
        [ "$side" = b ] && LOGGER_OPT=(--logger-config "$WORK/logger-b.conf")
        start_bg "$P-$side" "$WORK/ipsecd-$side.log" "$IPSECD" \
            --pfkey-socket "$WORK/pfkey-$side.sock" --control-socket "$WORK/control-$side.sock" \
            --keys-file "$WORK/ironswan.keys" --policy-file "$WORK/ironswan-$side.conf" \
            --tun "${P}i$side" --natt-port "$NATT_PORT" "${LOGGER_OPT[@]}"
        if [ "$side" = a ]; then IPSECD_A=$BG_PID; else IPSECD_B=$BG_PID; fi
    done
    ok=1
    wait_for 10 sh -c "ip netns exec $NSA ip route show table 5376 | grep -q '10.201.1.2 dev'" || ok=0
    wait_for 10 sh -c "ip netns exec $NSB ip route show table 5376 | grep -q '10.201.1.1 dev'" || ok=0
    sleep 0.5
    IDLE_RSS_A=$(rss_kib "$IPSECD_A")
    IDLE_RSS_B=$(rss_kib "$IPSECD_B")
    note "ipsecd idle VmRSS: a $IDLE_RSS_A KiB, b $IDLE_RSS_B KiB"
    PATTERN="ESP\(spi=0x0000100[12]"
    [ "$ENCAP" = udp ] && PATTERN="\.4501: UDP"
    if [ "$ok" = 1 ] && capture_check ironswan 10.201.1.2 "$PATTERN"; then
        READY[ironswan]=1
    else
        note "ironswan: tunnel not working; see $OUT/ipsecd-a.log, ipsecd-b.log"
        READY[ironswan]=0
    fi
    DAEMONS[ironswan]="$IPSECD_A $IPSECD_B"
    for p in ironswan-drop ironswan-drop-log "${WORKER_PATHS[@]}"; do
        DST[$p]=10.201.1.2
        DAEMONS[$p]="$IPSECD_A $IPSECD_B"
        READY[$p]=${READY[ironswan]}
    done
fi

# control SOCKET REQUEST: one request on an ipsecd control socket (a path: no namespace
# needed); prints the reply.
control() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(sys.argv[2].encode())
print(s.recv(1 << 20).decode(), end="")
PY
}
# The side sender of --logger-drops: ESP with the unknown SPI 0xdead0000 toward DST at PPS
# packets per second for SECS seconds (ESP in UDP to PORT, or raw ESP when PORT is 0);
# prints how many it sent.
INJECT='
import socket, struct, sys, time
dst, pps, secs, port = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
if port:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    to = (dst, port)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
    to = (dst, 0)
n, t0 = 0, time.monotonic()
while True:
    now = time.monotonic() - t0
    if now >= secs:
        break
    while n < int(now * pps):
        n += 1
        s.sendto(struct.pack("!II", 0xdead0000, n) + bytes(100), to)
    time.sleep(0.002)
print(n)
'
DROP_PPS=1000

# ---- wireguard-go -------------------------------------------------------------------------------
if want wireguard-go; then
    section "wireguard-go: $(dpkg-query -W -f='${Version}' wireguard-go)"
    umask 077
    ka=$(wg genkey); kb=$(wg genkey)
    umask 022
    pa=$(printf '%s' "$ka" | wg pubkey); pb=$(printf '%s' "$kb" | wg pubkey)
    printf '%s\n' "$ka" >"$WORK/wg-a.key"; printf '%s\n' "$kb" >"$WORK/wg-b.key"
    chmod 600 "$WORK"/wg-*.key
    WG_PIDS=""
    for side in a b; do
        ns="$P-$side"; dev="$P""w$side"; n=1; peer_n=2; peer_pub="$pb"
        [ "$side" = b ] && { n=2; peer_n=1; peer_pub="$pa"; }
        start_bg "$ns" "$WORK/wireguard-go-$side.log" env WG_PROCESS_FOREGROUND=1 \
            WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 LOG_LEVEL=error wireguard-go "$dev"
        WG_PIDS="$WG_PIDS $BG_PID"
        wait_for 10 test -S "/var/run/wireguard/$dev.sock"
        ip netns exec "$ns" wg set "$dev" private-key "$WORK/wg-$side.key" listen-port 51820 \
            peer "$peer_pub" allowed-ips "10.202.0.$peer_n/32" endpoint "10.201.0.$peer_n:51820"
        ip netns exec "$ns" ip addr add "10.202.0.$n/24" dev "$dev"
        ip netns exec "$ns" ip link set "$dev" mtu 1420 up
    done
    DAEMONS[wireguard-go]="${WG_PIDS# }"
    if capture_check wireguard-go 10.202.0.2 "UDP, length|\.51820"; then
        READY[wireguard-go]=1
    else
        note "wireguard-go: tunnel not working; see $OUT/wireguard-go-a.log"
        READY[wireguard-go]=0
    fi
fi

# ---- strongSwan kernel-libipsec -------------------------------------------------------------------
if want strongswan; then
    section "strongSwan: charon-systemd $(dpkg-query -W -f='${Version}' charon-systemd) with kernel-libipsec"
    psk=$(hexkey 24)
    SW_PIDS=""
    for side in a b; do
        ns="$P-$side"; n=1; peer_n=2
        [ "$side" = b ] && { n=2; peer_n=1; }
        ip netns exec "$ns" ip addr add "10.203.0.$n/32" dev lo
        d="$WORK/strongswan-$side"
        mkdir -p "$d"
        # openssl before gcm: AES-GCM from OpenSSL (AES-NI), as Debian's default plugin order.
        cat >"$d/strongswan.conf" <<EOF
charon {
    load_modular = no
    load = random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
    install_virtual_ip = no
    plugins {
        vici {
            socket = unix://$d/charon.vici
        }
    }
    filelog {
        log {
            path = $WORK/charon-$side.log
            default = 1
            flush_line = yes
        }
    }
}
charon-systemd {
    journal {
        default = -1
    }
}
EOF
        cat >"$d/swanctl.conf" <<EOF
connections {
    bench {
        version = 2
        local_addrs = 10.201.0.$n
        remote_addrs = 10.201.0.$peer_n
        proposals = aes128gcm16-prfsha256-ecp256
        local {
            auth = psk
            id = side-$side
        }
        remote {
            auth = psk
            id = side-$( [ "$side" = a ] && echo b || echo a )
        }
        children {
            bench {
                mode = tunnel
                local_ts = 10.203.0.$n/32
                remote_ts = 10.203.0.$peer_n/32
                esp_proposals = aes128gcm16
            }
        }
    }
}
secrets {
    ike-bench {
        id-a = side-a
        id-b = side-b
        secret = 0x$psk
    }
}
EOF
        chmod 600 "$d/swanctl.conf"
        start_bg "$ns" "$WORK/charon-systemd-$side.log" env STRONGSWAN_CONF="$d/strongswan.conf" charon-systemd
        SW_PIDS="$SW_PIDS $BG_PID"
        wait_for 10 test -S "$d/charon.vici" || true
        ip netns exec "$ns" swanctl --load-all --noprompt --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" \
            >"$WORK/swanctl-load-$side.log" 2>&1 || note "swanctl --load-all ($side) failed: $(tail -3 "$WORK/swanctl-load-$side.log")"
    done
    DAEMONS[strongswan]="${SW_PIDS# }"
    if ina swanctl --initiate --child bench --timeout 20 --uri "unix://$WORK/strongswan-a/charon.vici" \
        >"$WORK/swanctl-initiate.log" 2>&1 \
        && capture_check strongswan 10.203.0.2 "UDP-encap|\.4500: UDP"; then
        READY[strongswan]=1
        grep -E "CHILD_SA .* established|IKE_SA .* established" "$WORK/swanctl-initiate.log" | sed 's/^.*\] //' || true
        ina swanctl --list-sas --uri "unix://$WORK/strongswan-a/charon.vici" 2>/dev/null | grep -E "AES_GCM|ECP|in  |out " | sed 's/^/  /' || true
    else
        note "strongswan: tunnel not working; see $OUT/charon-a.log, swanctl-initiate.log"
        tail -5 "$WORK/swanctl-initiate.log" || true
        READY[strongswan]=0
    fi
fi

# ---- measurement ---------------------------------------------------------------------------------
section "iperf3: $RUNS run(s) of $SECONDS_PER_RUN s per path, single TCP stream, interleaved"
RESULTS="$OUT/results.tsv"
START_WORKERS=1
if [ ${#WORKER_PATHS[@]} -gt 0 ] && [ "${READY[ironswan]:-0}" = 1 ]; then
    START_WORKERS=$(control "$WORK/control-a.sock" workers | sed -n 's/^ok workers=//p')
    note "ipsecd started with $START_WORKERS crypto thread(s); worker paths: ${WORKER_PATHS[*]}"
fi
printf 'path\trun\tgbps\tdaemon_cpu_pct\tmachine_busy_pct\tretransmits\tiperf3_cpu_pct\n' >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
    for path in "${PATHS[@]}"; do
        [ "${READY[$path]:-0}" = 1 ] || continue
        json="$OUT/iperf3-$path-$run.json"
        INJ_PID=
        case "$path" in
            ironswan|ironswan-w*)
                if [ ${#WORKER_PATHS[@]} -gt 0 ]; then
                    n=${path#ironswan-w}
                    [ "$path" = ironswan ] && n=$START_WORKERS
                    for side in a b; do
                        control "$WORK/control-$side.sock" "workers $n" | head -1 | sed "s/^/  $side: workers $n: /"
                    done
                fi
                ;;
            ironswan-drop|ironswan-drop-log)
                if [ "$path" = ironswan-drop-log ]; then req="logger enable"; else req="logger disable"; fi
                control "$WORK/control-b.sock" "$req" | head -1 | sed "s/^/  b: $req: /"
                ina nice -n "$NICE" python3 -c "$INJECT" 10.201.0.2 "$DROP_PPS" "$(( SECONDS_PER_RUN + 1 ))" \
                    "$NATT_PORT" >"$WORK/inject-$path-$run.txt" 2>&1 &
                INJ_PID=$!
                ;;
        esac
        # shellcheck disable=SC2086
        c0=$(cpu_ticks ${DAEMONS[$path]})
        read -r mb0 mt0 < <(machine_ticks)
        w0=$EPOCHREALTIME
        if ! ina_nice timeout $(( SECONDS_PER_RUN + 30 )) iperf3 -c "${DST[$path]}" -t "$SECONDS_PER_RUN" \
            --connect-timeout 5000 -J >"$json" 2>"$WORK/iperf3-$path-$run.err"; then
            note "$path run $run: iperf3 failed ($(head -c 200 "$WORK/iperf3-$path-$run.err"))"
            continue
        fi
        # shellcheck disable=SC2086
        c1=$(cpu_ticks ${DAEMONS[$path]})
        read -r mb1 mt1 < <(machine_ticks)
        w1=$EPOCHREALTIME
        if [ -n "$INJ_PID" ]; then
            wait "$INJ_PID" || true
            note "  $path run $run: $(cat "$WORK/inject-$path-$run.txt") unknown-SPI packets injected at $DROP_PPS/s"
        fi
        python3 - "$json" "$path" "$run" "$c0" "$c1" "$HZ" "$w0" "$w1" \
            "$(( mb1 - mb0 ))" "$(( mt1 - mt0 ))" >>"$RESULTS" <<'PY'
import json, sys
f, path, run, c0, c1, hz, w0, w1, mbusy, mtotal = sys.argv[1:]
j = json.load(open(f))
end = j["end"]
gbps = end["sum_received"]["bits_per_second"] / 1e9
retr = end.get("sum_sent", {}).get("retransmits", 0)
secs = float(w1) - float(w0)
# CPU of each daemon (a, then b) in % of one core over the run's wall time (the test plus
# connection set-up and the final exchange, a few hundred ms).
dcpu = "/".join(f"{100.0 * (int(b) - int(a)) / int(hz) / secs:.0f}"
                for a, b in zip(c0.split(","), c1.split(","))) if path != "veth" else "-"
busy = 100.0 * int(mbusy) / max(1, int(mtotal))
# iperf3's own CPU (user + system, % of one core; the kernel's TCP and the sending half of the
# veth run in these processes' context), sender/receiver
u = end.get("cpu_utilization_percent", {})
icpu = f"{u.get('host_total', 0):.0f}/{u.get('remote_total', 0):.0f}"
print(f"{path}\t{run}\t{gbps:.3f}\t{dcpu}\t{busy:.0f}\t{retr}\t{icpu}")
PY
        if [ "$path" = ironswan ]; then
            # 1% of this run's packet rate (full-size TCP segments of 1448 payload bytes).
            DROP_PPS=$(tail -1 "$RESULTS" | awk -F'\t' '{r = $3 * 1e9 / 8 / 1448 / 100; printf "%d", (r < 1 ? 1 : r)}')
        fi
        tail -1 "$RESULTS" | awk -F'\t' '{printf "  %-13s run %s: %7.3f Gbit/s  (daemons a/b %s%% of a core, iperf3 snd/rcv %s%%, machine %s%% busy, %s retransmits)\n", $1, $2, $3, $4, $7, $5, $6}'
    done
done

AFTER_RSS_A='' AFTER_HWM_A='' AFTER_RSS_B='' AFTER_HWM_B=''
if [ "${READY[ironswan]:-0}" = 1 ]; then
    AFTER_RSS_A=$(rss_kib "$IPSECD_A"); AFTER_HWM_A=$(hwm_kib "$IPSECD_A")
    AFTER_RSS_B=$(rss_kib "$IPSECD_B"); AFTER_HWM_B=$(hwm_kib "$IPSECD_B")
    for side in a b; do
        ip netns exec "$P-$side" "$WORK/ipsecstat" --socket "$WORK/control-$side.sock" \
            >"$OUT/ipsecstat-$side.txt" 2>&1 || true
    done
    if [ "$LOGGER_DROPS" = 1 ]; then
        control "$WORK/control-b.sock" counters | grep -E "^(log_|esp_no_sa|nflog_)" >"$OUT/logger-counters.txt" || true
        note "b's logger counters: $(tr '\n' ' ' <"$OUT/logger-counters.txt")"
        cp "$WORK/policy-b.log" "$OUT/" 2>/dev/null || true
        note "policy log: $(wc -l <"$WORK/policy-b.log" 2>/dev/null || echo 0) records, first: $(head -1 "$WORK/policy-b.log" 2>/dev/null)"
    fi
fi

# ---- profile (optional) -------------------------------------------------------------------------
if [ "$PROFILE" = 1 ] && [ "${READY[ironswan]:-0}" = 1 ]; then
    secs=$(( SECONDS_PER_RUN < 5 ? SECONDS_PER_RUN : 5 ))
    section "profile: both ipsecds for $secs s during one more ironswan run (a sends, b receives)"
    if command -v perf >/dev/null; then
        ina_nice iperf3 -c 10.201.1.2 -t $(( secs + 4 )) -J >"$OUT/iperf3-ironswan-perf.json" 2>&1 &
        ipid=$!
        sleep 2
        perf record -q -g -p "$IPSECD_A" -o "$WORK/perf-a.data" -- sleep "$secs" >/dev/null 2>&1 &
        ppid=$!
        perf record -q -g -p "$IPSECD_B" -o "$WORK/perf-b.data" -- sleep "$secs" >/dev/null 2>&1 || true
        wait "$ppid" || true
        wait "$ipid" || true
        for side in a b; do
            {
                echo "# ipsecd $side: by object"
                perf report -i "$WORK/perf-$side.data" --no-children --stdio -g none --sort dso 2>/dev/null \
                    | grep -E "^ +[0-9]" | head -6
                echo "# ipsecd $side: by symbol (self)"
                perf report -i "$WORK/perf-$side.data" --no-children --stdio -g none --sort sym 2>/dev/null \
                    | grep -E "^ +[0-9]" | head -40
            } >"$OUT/perf-ipsecd-$side.txt" || true
            perf report -i "$WORK/perf-$side.data" --children --stdio -g caller,0.5,callee --percent-limit 5 \
                >"$OUT/perf-ipsecd-$side-callgraph.txt" 2>/dev/null || true
            note "perf, ipsecd $side (top of $OUT/perf-ipsecd-$side.txt):"
            head -22 "$OUT/perf-ipsecd-$side.txt" | sed 's/^/  /'
        done
    fi
    if command -v perf >/dev/null; then
        # System calls and context switches per second, counted by tracepoints (unlike strace,
        # this barely slows the daemon).
        ev="task-clock,context-switches,syscalls:sys_enter_ppoll,syscalls:sys_enter_read"
        ev="$ev,syscalls:sys_enter_readv,syscalls:sys_enter_write,syscalls:sys_enter_writev"
        ev="$ev,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendmmsg"
        ev="$ev,syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmsg,syscalls:sys_enter_recvmmsg"
        ina_nice iperf3 -c 10.201.1.2 -t $(( secs + 4 )) -J >"$OUT/iperf3-ironswan-perfstat.json" 2>&1 &
        ipid=$!
        sleep 2
        s0a=$(schedstat "$IPSECD_A"); s0b=$(schedstat "$IPSECD_B")
        perf stat -x, -e "$ev" -p "$IPSECD_A" -o "$OUT/perfstat-ipsecd-a.csv" -- sleep "$secs" >/dev/null 2>&1 &
        ppid=$!
        perf stat -x, -e "$ev" -p "$IPSECD_B" -o "$OUT/perfstat-ipsecd-b.csv" -- sleep "$secs" >/dev/null 2>&1 || true
        wait "$ppid" || true
        s1a=$(schedstat "$IPSECD_A"); s1b=$(schedstat "$IPSECD_B")
        wait "$ipid" || true
        python3 - "$OUT" "$secs" "$s0a" "$s1a" "$s0b" "$s1b" <<'PY' || true
import json, sys
out, secs = sys.argv[1], float(sys.argv[2])
sched = {"a": (sys.argv[3], sys.argv[4]), "b": (sys.argv[5], sys.argv[6])}
j = json.load(open(f"{out}/iperf3-ironswan-perfstat.json"))
ivs = [i["sum"] for i in j["intervals"]]
# the intervals inside the counting window (it starts 2 s into the run)
win = [i["bits_per_second"] for i in ivs[2:2 + int(secs)]] or [0]
gbps = sum(win) / len(win) / 1e9
print(f"  system calls per second during {secs:.0f} s of a run at {gbps:.2f} Gbit/s "
      f"(about {gbps * 1e9 / 8 / 1400 / 1000:.0f} k full-size packets/s):")
for side in "ab":
    vals = {}
    for line in open(f"{out}/perfstat-ipsecd-{side}.csv"):
        f = line.strip().split(",")
        if len(f) > 3 and f[0] and f[0][0].isdigit():
            vals[f[2].replace("syscalls:sys_enter_", "")] = float(f[0])
    cpu = vals.pop("task-clock", 0) / 1e3 / secs * 100
    parts = ", ".join(f"{k} {v / secs / 1000:.1f}k" for k, v in vals.items() if v)
    print(f"    ipsecd {side}: CPU {cpu:.0f}% of a core; {parts}")
    (r0, w0, n0), (r1, w1, n1) = ([int(x) for x in v.split()] for v in sched[side])
    print(f"      scheduler: on a CPU {(r1 - r0) / 1e9:.2f} s, runnable but waiting for a CPU "
          f"{(w1 - w0) / 1e9:.2f} s, {(n1 - n0) / secs / 1000:.1f}k timeslices/s (all threads)")
PY
    fi
    if command -v strace >/dev/null; then
        ina_nice iperf3 -c 10.201.1.2 -t $(( secs + 4 )) -J >"$OUT/iperf3-ironswan-strace.json" 2>&1 &
        ipid=$!
        sleep 2
        timeout -s INT "$secs" strace -c -f -p "$IPSECD_A" -o "$OUT/strace-ipsecd-a.txt" >/dev/null 2>&1 &
        spid=$!
        timeout -s INT "$secs" strace -c -f -p "$IPSECD_B" -o "$OUT/strace-ipsecd-b.txt" >/dev/null 2>&1 || true
        wait "$spid" || true
        wait "$ipid" || true
        for side in a b; do
            note "strace -c -f of ipsecd $side for $secs s (strace slows the daemon; $OUT/strace-ipsecd-$side.txt):"
            head -12 "$OUT/strace-ipsecd-$side.txt" | sed 's/^/  /'
        done
        python3 - "$OUT/iperf3-ironswan-strace.json" <<'PY' || true
import json, sys
print(f"  (throughput under strace: {json.load(open(sys.argv[1]))['end']['sum_received']['bits_per_second'] / 1e9:.2f} Gbit/s)")
PY
    fi
fi

# ---- memory: 10,000 SAs and 10,000 rules -----------------------------------------------------
LOADED_RSS='' LOADED_HWM='' LOADED_SECS='' LOADED_NOTE=''
if [ "$MEMORY" = 1 ]; then
    section "memory: ipsecd with 10,000 SAs and 10,000 policy rules"
    ip netns add "$NSM"
    ip netns exec "$NSM" ip link set lo up
    ip netns exec "$NSM" ip link add "${P}m" type veth peer name "${P}n"
    ip netns exec "$NSM" ip addr add 10.205.0.1/24 dev "${P}m"
    ip netns exec "$NSM" ip link set "${P}m" up
    ip netns exec "$NSM" ip link set "${P}n" up
    ip netns exec "$NSM" ip route add default via 10.205.0.2
    python3 - "$WORK/mem.keys" "$WORK/mem.conf" <<'PY'
import os, sys
keys, conf = sys.argv[1:]
with open(keys, "w") as k, open(conf, "w") as c:
    os.chmod(keys, 0o600)
    for i in range(10000):
        dst = f"10.4.{i // 250}.{i % 250 + 1}"
        k.write(f"add esp spi 0x{0x10000 + i:x} src 10.205.0.1 dst {dst} encr_alg aes-gcm "
                f"encrkey {os.urandom(20).hex()} replay 1024\n")
        c.write(f"{{laddr 10.205.0.1 raddr {dst}}} ipsec {{encr_algs aes-gcm sa shared}}\n")
PY
    t0=$(date +%s.%N)
    start_bg "$NSM" "$WORK/ipsecd-mem.log" "$IPSECD" \
        --pfkey-socket "$WORK/pfkey-m.sock" --control-socket "$WORK/control-m.sock" \
        --keys-file "$WORK/mem.keys" --policy-file "$WORK/mem.conf" --tun "${P}im" --natt-port 0
    MEM_PID=$BG_PID
    # Ready once every destination is routed into the TUN (10,000 routes + 10,000 prohibit).
    if wait_for 120 sh -c "[ \$(ip netns exec $NSM ip route show table 5376 | grep -c ' dev ${P}im') -ge 10000 ]"; then
        t1=$(date +%s.%N)
        LOADED_SECS=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
    else
        LOADED_NOTE="(routes not all in after 120 s: $(ip netns exec "$NSM" ip route show table 5376 | grep -c " dev ${P}im") of 10000)"
    fi
    sleep 1
    LOADED_RSS=$(rss_kib "$MEM_PID"); LOADED_HWM=$(hwm_kib "$MEM_PID")
    note "loaded: VmRSS $LOADED_RSS KiB, VmHWM $LOADED_HWM KiB, ready after ${LOADED_SECS:-?} s $LOADED_NOTE"
    grep -E "loaded|error" "$WORK/ipsecd-mem.log" | head -5 | sed 's/^/  /' || true
    kill -TERM "$MEM_PID" 2>/dev/null || true
fi

# ---- table -----------------------------------------------------------------------------------------
section "tunnel throughput ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), nice $NICE, ironswan built at $VERSION)"
python3 - "$RESULTS" "$RUNS" "$SECONDS_PER_RUN" \
    "${IDLE_RSS_A:-}" "${IDLE_RSS_B:-}" "$AFTER_RSS_A" "$AFTER_HWM_A" "$AFTER_RSS_B" "$AFTER_HWM_B" \
    "$LOADED_RSS" "$LOADED_HWM" "$LOADED_SECS" <<'PY' | tee "$OUT/table.txt"
import statistics, sys
res, runs, secs = sys.argv[1], sys.argv[2], sys.argv[3]
idle_a, idle_b, after_a, hwm_a, after_b, hwm_b, loaded, loaded_hwm, loaded_secs = sys.argv[4:13]
rows = {}
for line in open(res).read().splitlines()[1:]:
    p, run, g, dcpu, busy, retr, icpu = line.split("\t")
    rows.setdefault(p, []).append((float(g), dcpu, float(busy), int(retr), icpu))
order = [p for p in ("veth", "ironswan", "ironswan-drop", "ironswan-drop-log") if p in rows]
order += sorted((p for p in rows if p.startswith("ironswan-w")), key=lambda p: int(p[10:]))
order += [p for p in ("wireguard-go", "strongswan") if p in rows]
med = {p: statistics.median(g for g, *_ in rows[p]) for p in order}
veth = med.get("veth")
print(f"iperf3 TCP, single stream, {secs} s per run, median of {runs} (interleaved), AES-128-GCM tunnels")
print()
print("| path | Gbit/s median | min–max | runs | of veth | daemon CPU a/b | iperf3 CPU snd/rcv | CPU s per Gbit | TCP retransmits | machine busy |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
def cols(strings):
    per = [[float(x) for x in s.split("/")] for s in strings]
    return [statistics.median(c) for c in zip(*per)]
cost = {}
for p in order:
    gs = [g for g, *_ in rows[p]]
    ratio = f"{med[p] / veth:.3f}" if veth else "—"
    dcols = [] if p == "veth" else cols(r[1] for r in rows[p])
    dc = "—" if p == "veth" else "/".join(f"{c:.0f}" for c in dcols) + "%"
    icols = cols(r[4] for r in rows[p])
    ic = "/".join(f"{c:.0f}" for c in icols) + "%"
    # CPU seconds (daemons + iperf3 processes) per Gbit carried, run by run, median
    cost[p] = statistics.median(
        (sum(0.0 if p == "veth" else float(x) for x in r[1].split("/"))
         + sum(float(x) for x in r[4].split("/"))) / 100.0 / r[0]
        for r in rows[p] if r[0] > 0)
    busy = statistics.median(r[2] for r in rows[p])
    retr = statistics.median(r[3] for r in rows[p])
    print(f"| {p} | {med[p]:.2f} | {min(gs):.2f}–{max(gs):.2f} | {len(gs)} | {ratio} | {dc} | {ic} | {cost[p]:.2f} | {retr:.0f} | {busy:.0f}% |")
print()
bars = []
if "ironswan" in med:
    for peer, bar in (("strongswan", 10.0), ("wireguard-go", 5.0)):
        if peer in med and med[peer] > 0:
            r = med["ironswan"] / med[peer]
            ok = r >= bar
            bars.append(ok)
            print(f"ironswan / {peer}: {r:.2f}x (bar: at least {bar:.0f}x) -> {'PASS' if ok else 'MISSED'}"
                  f"; CPU per Gbit: {cost[peer] / cost['ironswan']:.2f}x less")
def mib(k):
    return f"{int(k) / 1024:.1f} MiB" if k else "—"
if idle_a:
    ok = max(int(idle_a), int(idle_b or 0)) < 20 * 1024
    bars.append(ok)
    print(f"ipsecd idle VmRSS (2 SAs, 1 rule, TUN up, before traffic): a {mib(idle_a)}, b {mib(idle_b)} "
          f"(bar: under 20 MiB) -> {'PASS' if ok else 'MISSED'}")
if after_a:
    print(f"ipsecd after the runs: VmRSS a {mib(after_a)} (peak {mib(hwm_a)}), b {mib(after_b)} (peak {mib(hwm_b)})")
if loaded:
    ok = int(loaded) < 100 * 1024
    bars.append(ok)
    ready = f", routes in after {loaded_secs} s" if loaded_secs else ""
    print(f"ipsecd with 10,000 SAs and 10,000 rules loaded: VmRSS {mib(loaded)} (peak {mib(loaded_hwm)}{ready}) "
          f"(bar: under 100 MiB) -> {'PASS' if ok else 'MISSED'}")
if "ironswan-drop" in med and "ironswan-drop-log" in med and med["ironswan-drop"] > 0:
    r = med["ironswan-drop-log"] / med["ironswan-drop"]
    ok = r >= 0.95
    bars.append(ok)
    print(f"1% of packets dropped: with the policy logger at message+packet {med['ironswan-drop-log']:.2f} Gbit/s, "
          f"without {med['ironswan-drop']:.2f} Gbit/s: {r:.3f} (bar: within 5%) -> {'PASS' if ok else 'MISSED'}")
print()
print(f"bars: {sum(bars)} of {len(bars)} pass")
PY
note "raw results: $OUT/"
