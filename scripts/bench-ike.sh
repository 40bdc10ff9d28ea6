#!/usr/bin/env bash
# IKE benchmarks (issue 9's bars): new IKE SAs per second against our responder and against
# strongSwan's in the same run, and a half-open flood from spoofed addresses at in.ikev2d.
#
#   scripts/bench-ike.sh [--rounds N] [--seconds S] [--concurrency C] [--threads T]
#                        [--keep] [--no-strongswan] [--no-flood] [--flood-count N]
#                        [--flood-seconds S] [--cookie-threshold N] [--charon-log L] [--profile]
#
#   --rounds N           rounds of the rate measurement (default 3); each round measures both
#                        responders one after the other, the order alternating by round
#   --seconds S          length of each measurement (default 10)
#   --concurrency C      IKE SAs in progress at once per generator thread (default 32)
#   --threads T          generator threads, each its own UDP port (default 2)
#   --keep               keep the IKE SAs (default: the generator deletes each IKE SA as
#                        soon as it is established, so both responders also do the teardown
#                        and their state stays bounded from round to round)
#   --no-strongswan      measure our responder only
#   --no-flood           skip the half-open flood
#   --flood-count N      IKE_SA_INIT requests of the flood (default 10000)
#   --flood-seconds S    spread over S seconds (default 30)
#   --cookie-threshold N in.ikev2d's threshold during the flood (default 64, its default)
#   --charon-log L       charon's file log level (default 1, its default; -1: silent, to
#                        see what its logging costs)
#   --profile            after the rounds, one more run against our responder under
#                        `strace -c -f` of in.ikev2d and ipsecd (reports in the results dir)
#
# Needs root. Everything it creates carries the prefix ibi<pid>: namespaces ibi<pid>-g (the
# generator), ibi<pid>-o (ipsecd + in.ikev2d) and ibi<pid>-s (strongSwan's charon with
# kernel-libipsec), and the two veth pairs; an exit trap kills every process it started and
# removes them. Results: the summary on stdout, the raw files in target/bench-ike/
# (results.tsv, rss-flood.tsv, the capture of the flood, daemon logs).
#
#   g 192.0.2.1    ──── o 192.0.2.2     ipsecd (TUN ipsec0) + in.ikev2d, UDP 500
#   g 198.51.100.1 ──── s 198.51.100.2  charon-systemd (kernel-libipsec), UDP 500
#
# 1. Rate. The load generator (target/release/ikev2-load, the `ike` crate's initiator)
#    keeps C exchanges in flight per thread: IKE_SA_INIT + IKE_AUTH with PSK, Curve25519,
#    AES-GCM-16 128 IKE SA, PRF HMAC-SHA2-256, one tunnel-mode AES-GCM-16 128 Child SA
#    (host to host), each IKE SA with its own initiator SPI, then (without --keep) an
#    INFORMATIONAL delete of the IKE SA. The figure is IKE SAs established per second inside
#    the window. Both responders accept unlimited half-open SAs (no cookies: in.ikev2d
#    --cookie-threshold 1000000; charon cookie_threshold, cookie_threshold_ip and
#    block_threshold 1000000, init_limit_half_open 0; charon also gets an IKE SA hash table of
#    1024 buckets in 16 segments instead of its default single bucket), keep every IKE SA of the same identity (no INITIAL_CONTACT is
#    sent; swanctl's `unique = no`), and log at their default level to a file. ipsecd keys
#    each Child SA pair (GETSPI, UPDATE, ADD; two DELETEs at the end); charon installs them in
#    libipsec. Besides the rate: the responder's CPU time per IKE SA (in.ikev2d + ipsecd,
#    charon with all its threads), from /proc/PID/stat around each run.
#    Bar of issue 9: our responder at least matches strongSwan's (median rate ratio >= 1).
# 2. Flood. A fresh in.ikev2d with --cookie-threshold N (default 64); the generator's
#    namespace holds 10.99.0.0/16 as local addresses (AnyIP route on lo) and o routes that
#    prefix back to g, so every answer returns to g and nothing leaves the namespaces.
#    `ikev2-load flood` sends N IKE_SA_INIT requests, each from its own address of the
#    prefix, evenly over S seconds, and never continues them; tcpdump in g records the
#    answers and tshark counts them by kind (full IKE_SA_INIT response / COOKIE only /
#    other). in.ikev2d's VmRSS is sampled every 0.2 s (and its VmHWM read at the end);
#    at a third and two thirds of the flood a legitimate initiator (ikev2-load sas --count 2
#    from 192.0.2.1) must complete the COOKIE exchange and get its IKE SAs.
#    Bars: only COOKIE answers above the threshold (full answers = threshold, none after the
#    first COOKIE while those half-open SAs live: in.ikev2d forgets them after 30 s, so a
#    flood of 30 s or more may see a few full answers again at its end, counted apart as
#    full_after_expiry), memory bounded (peak VmRSS reported against idle), the legitimate
#    initiator established.
#
# The script exits 0 when a bar is missed (it is a measurement) and says which bars pass.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

ROUNDS=3
SECS=10
CONC=32
THREADS=2
KEEP=0
STRONGSWAN=1
FLOOD=1
FLOOD_COUNT=10000
FLOOD_SECS=30
THRESHOLD=64
PROFILE=0
CHARON_LOG=1
usage() { sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --seconds) SECS="$2"; shift 2 ;;
        --concurrency) CONC="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --no-strongswan) STRONGSWAN=0; shift ;;
        --no-flood) FLOOD=0; shift ;;
        --flood-count) FLOOD_COUNT="$2"; shift 2 ;;
        --flood-seconds) FLOOD_SECS="$2"; shift 2 ;;
        --cookie-threshold) THRESHOLD="$2"; shift 2 ;;
        --charon-log) CHARON_LOG="$2"; shift 2 ;;
        --profile) PROFILE=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done
case "$CHARON_LOG" in -1|0|1|2|3|4) ;; *) echo "--charon-log takes -1 to 4" >&2; exit 2 ;; esac
for v in "$ROUNDS" "$SECS" "$CONC" "$THREADS" "$FLOOD_COUNT" "$FLOOD_SECS" "$THRESHOLD"; do
    case "$v" in ''|*[!0-9]*|0) echo "numeric options take positive integers" >&2; exit 2 ;; esac
done

if [ "$(id -u)" != 0 ]; then
    echo "bench-ike.sh needs root (network namespaces, TUN devices)" >&2
    exit 1
fi

# section, note, apt_install, start_bg, wait_for, rss_kib, hwm_kib, machine_ticks, HZ
# shellcheck source=scripts/bench-common.sh
. "$ROOT/scripts/bench-common.sh"

section "packages and build"
apt_install iproute2 tcpdump tshark python3 strace
[ "$STRONGSWAN" = 1 ] && apt_install charon-systemd strongswan-swanctl libcharon-extra-plugins \
    libstrongswan-standard-plugins
cargo build --release -q -p ipsecd -p ikev2d
VERSION="$(git describe --always --dirty 2>/dev/null || echo '?')"
[ "$STRONGSWAN" = 1 ] && note "charon-systemd $(dpkg-query -W -f='${Version}' charon-systemd)"

# ---- names, work directory, cleanup ------------------------------------------------------------
ID=$(( $$ % 100000 ))
P="ibi$ID"
NSG="$P-g"
NSO="$P-o"
NSS="$P-s"
OUT="$ROOT/target/bench-ike"
rm -rf "$OUT"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-ike.XXXXXX")"
chmod 700 "$WORK"
# Private copies: a rebuild of target/release during the run changes nothing here.
cp "$ROOT/target/release/ipsecd" "$ROOT/target/release/in-ikev2d" "$ROOT/target/release/ikev2adm" \
    "$ROOT/target/release/ikev2-load" "$WORK/"
PIDS=()

cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM
    set +e
    exec 2>/dev/null  # (bash reports the jobs killed below)
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.3
    for ns in "$NSG" "$NSO" "$NSS"; do
        ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    # Keep the logs next to the results (the start and the end of the long ones: both
    # daemons log every IKE SA, 100,000s of them).
    for f in "$WORK"/*.log; do
        [ -f "$f" ] || continue
        if [ "$(stat -c %s "$f")" -gt 4000000 ]; then
            { head -n 300 "$f"; echo "[... $(wc -l <"$f") lines in all ...]"; tail -n 3000 "$f"; } \
                >"$OUT/$(basename "$f")"
        else
            cp -f "$f" "$OUT/"
        fi
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU ticks (user + system, all threads) summed over the given pids.
cpu_ticks() {
    local t=0 pid
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] && t=$(( t + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat") ))
    done
    echo "$t"
}
PSK_FILE="$WORK/psk"
od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$PSK_FILE"
echo >>"$PSK_FILE"
chmod 600 "$PSK_FILE"
PSK="$(head -1 "$PSK_FILE")"

# ---- namespaces --------------------------------------------------------------------------------
section "namespaces $NSG (generator), $NSO (ours), $NSS (strongSwan)"
for ns in "$NSG" "$NSO" "$NSS"; do
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
ip link add "${P}go" netns "$NSG" type veth peer name "${P}og" netns "$NSO"
ip link add "${P}gs" netns "$NSG" type veth peer name "${P}sg" netns "$NSS"
ip netns exec "$NSG" ip addr add 192.0.2.1/24 dev "${P}go"
ip netns exec "$NSO" ip addr add 192.0.2.2/24 dev "${P}og"
ip netns exec "$NSG" ip addr add 198.51.100.1/24 dev "${P}gs"
ip netns exec "$NSS" ip addr add 198.51.100.2/24 dev "${P}sg"
ip netns exec "$NSG" ip link set "${P}go" up
ip netns exec "$NSG" ip link set "${P}gs" up
ip netns exec "$NSO" ip link set "${P}og" up
ip netns exec "$NSS" ip link set "${P}sg" up
wait_for 5 ip netns exec "$NSG" ping -c1 -W1 192.0.2.2
wait_for 5 ip netns exec "$NSG" ping -c1 -W1 198.51.100.2

# ---- our responder: ipsecd + in.ikev2d -----------------------------------------------------------
echo "{tunnel ip.tun0 negotiate tunnel laddr 192.0.2.2 raddr 192.0.2.1} ipsec {encr_algs aes-gcm sa shared}" \
    >"$WORK/ipsecd.conf"
: >"$WORK/ipsecd.keys"
chmod 600 "$WORK/ipsecd.keys"
start_bg "$NSO" "$WORK/ipsecd.log" "$WORK/ipsecd" --pfkey-socket "$WORK/pfkey.sock" \
    --control-socket "$WORK/control.sock" --keys-file "$WORK/ipsecd.keys" \
    --policy-file "$WORK/ipsecd.conf" --tun ipsec0
IPSECD=$BG_PID
wait_for 10 test -S "$WORK/pfkey.sock"
cat >"$WORK/ikev2.config" <<EOF
ikesa_xform { encr_alg aes-gcm(128) prf sha256 dh_group 31 }
{
  label "bench"
  auth_method preshared
  local_addr 192.0.2.2
  remote_addr 192.0.2.1
  remote_addr 10.99.0.0/16
  childsa_mode tunnel
  childsa_xform { encr_alg aes-gcm(128) }
}
EOF
printf '{ label "bench" key "%s" }\n' "$PSK" >"$WORK/ikev2.preshared"
chmod 600 "$WORK/ikev2.preshared"
IKEV2D=
# start_ikev2d THRESHOLD LOG: a fresh in.ikev2d (the previous one stopped); pid in IKEV2D.
start_ikev2d() {
    if [ -n "$IKEV2D" ]; then
        kill -TERM "$IKEV2D" 2>/dev/null || true
        wait "$IKEV2D" 2>/dev/null || true
    fi
    rm -f "$WORK/ikev2adm.sock"
    start_bg "$NSO" "$2" "$WORK/in-ikev2d" -f "$WORK/ikev2.config" --preshared "$WORK/ikev2.preshared" \
        --pfkey-socket "$WORK/pfkey.sock" --admin-socket "$WORK/ikev2adm.sock" --cookie-threshold "$1"
    IKEV2D=$BG_PID
    wait_for 10 grep -q "registered for ESP" "$2" || { note "in.ikev2d did not start:"; cat "$2"; exit 1; }
}
start_ikev2d 1000000 "$WORK/in-ikev2d-rate.log"
adm() { ip netns exec "$NSO" "$WORK/ikev2adm" -s "$WORK/ikev2adm.sock" "$@"; }

# ---- strongSwan's responder -----------------------------------------------------------------------
CHARON=
if [ "$STRONGSWAN" = 1 ]; then
    d="$WORK/strongswan"
    mkdir -p "$d"
    cat >"$d/strongswan.conf" <<EOF
charon {
    load_modular = no
    load = random drbg nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
    # Fair to a load of many half-open IKE SAs from one address: no cookies, no blocking
    # (the per-address defaults are 3 and 5).
    cookie_threshold = 1000000
    cookie_threshold_ip = 1000000
    block_threshold = 1000000
    init_limit_half_open = 0
    # A hash table for the IKE SAs (the default is one bucket, one lock).
    ikesa_table_size = 1024
    ikesa_table_segments = 16
    install_virtual_ip = no
    plugins {
        vici {
            socket = unix://$d/charon.vici
        }
        # The Child SA's selectors are the IKE addresses themselves: allowed, and IKE is
        # marked so that libipsec's route into ipsec0 does not capture it.
        kernel-libipsec {
            allow_peer_ts = yes
        }
        kernel-netlink {
            fwmark = !0x42
        }
        socket-default {
            fwmark = 0x42
        }
    }
    filelog {
        log {
            path = $WORK/charon.log
            default = $CHARON_LOG
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
        local_addrs = 198.51.100.2
        remote_addrs = 198.51.100.1
        proposals = aes128gcm16-prfsha256-x25519
        unique = no
        local {
            auth = psk
            id = 198.51.100.2
        }
        remote {
            auth = psk
            id = 198.51.100.1
        }
        children {
            bench {
                mode = tunnel
                local_ts = 198.51.100.2/32
                remote_ts = 198.51.100.1/32
                esp_proposals = aes128gcm16
            }
        }
    }
}
secrets {
    ike-bench {
        id-1 = 198.51.100.1
        id-2 = 198.51.100.2
        secret = "$PSK"
    }
}
EOF
    chmod 600 "$d/swanctl.conf"
    start_bg "$NSS" "$WORK/charon-systemd.log" env STRONGSWAN_CONF="$d/strongswan.conf" charon-systemd
    CHARON=$BG_PID
    wait_for 10 test -S "$d/charon.vici" || true
    ip netns exec "$NSS" swanctl --load-all --noprompt --file "$d/swanctl.conf" --uri "unix://$d/charon.vici" \
        >"$WORK/swanctl-load.log" 2>&1 || { note "swanctl --load-all failed:"; cat "$WORK/swanctl-load.log"; exit 1; }
    # charon-systemd runs as the child of `ip netns exec`'s process when exec'd; find its pid.
    CHARON=$(ip netns pids "$NSS" | while read -r p; do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = charon-systemd ] && echo "$p"; done | head -1)
fi

# ---- rate --------------------------------------------------------------------------------------------
RESULTS="$OUT/results.tsv"
printf 'responder\tround\testablished\trate\tcpu_ms_per_sa\tmachine_busy\tgenerator\n' >"$RESULTS"
KEEP_OPT=()
[ "$KEEP" = 1 ] && KEEP_OPT=(--keep)
# measure NAME ROUND: one run of the generator against responder NAME.
measure() {
    local name="$1" round="$2" peer src pids out t0 t1 m0 m1
    if [ "${name#ironswan}" != "$name" ]; then
        peer=192.0.2.2; src=192.0.2.1; pids=("$IKEV2D" "$IPSECD")
    else
        peer=198.51.100.2; src=198.51.100.1; pids=("$CHARON")
    fi
    t0=$(cpu_ticks "${pids[@]}"); m0=$(machine_ticks)
    out=$(ip netns exec "$NSG" "$WORK/ikev2-load" sas --peer "$peer" --local "$src" \
        --psk-file "$PSK_FILE" --concurrency "$CONC" --threads "$THREADS" --seconds "$SECS" \
        "${KEEP_OPT[@]}" 2>"$WORK/load-$name-$round.err" | tail -1)
    t1=$(cpu_ticks "${pids[@]}"); m1=$(machine_ticks)
    python3 - "$name" "$round" "$out" "$t0" "$t1" "$HZ" "$m0" "$m1" >>"$RESULTS" <<'PY'
import sys
name, rnd, out, t0, t1, hz, m0, m1 = sys.argv[1:]
f = dict(w.split("=", 1) for w in out.split() if "=" in w)
n = int(f.get("established", 0))
cpu_ms = (int(t1) - int(t0)) / int(hz) * 1000
b0, a0 = map(int, m0.split()); b1, a1 = map(int, m1.split())
busy = 100.0 * (b1 - b0) / max(1, a1 - a0)
print(f"{name}\t{rnd}\t{n}\t{f.get('rate', 0)}\t{cpu_ms / max(1, n):.3f}\t{busy:.0f}\t{out}")
PY
    note "round $round $name: $out"
}
RESPONDERS=(ironswan)
[ "$STRONGSWAN" = 1 ] && RESPONDERS+=(strongswan)
section "rate: $ROUNDS round(s) of $SECS s per responder, concurrency $CONC x $THREADS thread(s)$( [ "$KEEP" = 1 ] && echo ', IKE SAs kept' || echo ', each IKE SA deleted once established')"
# A first IKE SA with each, so that neither pays a cold start in the measurement.
for r in "${RESPONDERS[@]}"; do
    peer=192.0.2.2; src=192.0.2.1
    [ "$r" = strongswan ] && { peer=198.51.100.2; src=198.51.100.1; }
    w=$(ip netns exec "$NSG" "$WORK/ikev2-load" sas --peer "$peer" --local "$src" --psk-file "$PSK_FILE" \
        --count 20 --concurrency 4 --seconds 10 2>&1 | tail -1)
    note "warm-up $r: $w"
    case "$w" in *established=20*) ;; *) note "$r: warm-up failed; see the logs in $OUT"; exit 1 ;; esac
done
for round in $(seq 1 "$ROUNDS"); do
    order=("${RESPONDERS[@]}")
    if [ $(( round % 2 )) = 0 ] && [ ${#RESPONDERS[@]} = 2 ]; then order=(strongswan ironswan); fi
    for r in "${order[@]}"; do measure "$r" "$round"; done
done
IKE_STATS="$(adm show stats 2>&1 | tr '\n' ' ')"
note "in.ikev2d after the rounds: $IKE_STATS"
[ "$STRONGSWAN" = 1 ] && note "charon after the rounds: $(ip netns exec "$NSS" swanctl --stats --uri "unix://$WORK/strongswan/charon.vici" 2>/dev/null | grep -E 'IKE_SAs|half-open' | tr -s ' ' | tr '\n' ' ')"

if [ "$PROFILE" = 1 ]; then
    section "profile: strace -c -f of in.ikev2d and ipsecd during one more run against ours"
    timeout -s INT $(( SECS + 1 )) strace -c -f -p "$IKEV2D" -o "$OUT/strace-in-ikev2d.txt" >/dev/null 2>&1 &
    s1=$!
    timeout -s INT $(( SECS + 1 )) strace -c -f -p "$IPSECD" -o "$OUT/strace-ipsecd.txt" >/dev/null 2>&1 &
    s2=$!
    sleep 0.5
    measure ironswan-strace 0 || true
    wait "$s1" "$s2" 2>/dev/null || true
    for f in in-ikev2d ipsecd; do note "strace -c $f:"; head -14 "$OUT/strace-$f.txt" | sed 's/^/  /'; done
fi

# ---- flood -------------------------------------------------------------------------------------------
FLOOD_LINE='' LEGIT1='' LEGIT2='' HELD1='' HELD2='' IDLE_RSS='' PEAK_RSS='' HWM='' AFTER_STATS='' TSHARK_COUNTS=''
if [ "$FLOOD" = 1 ]; then
    section "half-open flood: $FLOOD_COUNT IKE_SA_INIT requests from spoofed addresses over $FLOOD_SECS s (cookie threshold $THRESHOLD)"
    start_ikev2d "$THRESHOLD" "$WORK/in-ikev2d-flood.log"
    ip netns exec "$NSG" ip route add local 10.99.0.0/16 dev lo
    # On the veth (not resolved through ipsecd's policy table, whose route to 192.0.2.1 enters ipsec0).
    ip netns exec "$NSO" ip route add 10.99.0.0/16 via 192.0.2.1 dev "${P}og"
    sleep 2
    IDLE_RSS=$(rss_kib "$IKEV2D")
    ip netns exec "$NSG" tcpdump -n -i "${P}go" -w "$WORK/flood.pcap" -s 200 udp port 500 \
        >"$WORK/tcpdump.log" 2>&1 &
    TCPDUMP=$!
    PIDS+=("$TCPDUMP")
    wait_for 5 grep -q "listening on" "$WORK/tcpdump.log" || sleep 1
    ( while kill -0 "$IKEV2D" 2>/dev/null; do
          printf '%s\t%s\n' "$(date +%s.%N | cut -c1-14)" "$(rss_kib "$IKEV2D")"
          sleep 0.2
      done ) >"$OUT/rss-flood.tsv" &
    SAMPLER=$!
    PIDS+=("$SAMPLER")
    ip netns exec "$NSG" "$WORK/ikev2-load" flood --peer 192.0.2.2 --sources 10.99.0.0/16 \
        --count "$FLOOD_COUNT" --seconds "$FLOOD_SECS" --linger-seconds 2 >"$WORK/flood.out" 2>&1 &
    FLOODER=$!
    PIDS+=("$FLOODER")
    legit() {
        ip netns exec "$NSG" "$WORK/ikev2-load" sas --peer 192.0.2.2 --local 192.0.2.1 \
            --psk-file "$PSK_FILE" --count 2 --concurrency 1 --seconds 10 2>&1 | tail -1
    }
    sleep "$(python3 -c "print($FLOOD_SECS / 3)")"
    HELD1=$(adm show stats | sed -n 's/^ike_sas=//p')
    LEGIT1=$(legit)
    note "IKE SAs held by in.ikev2d at 1/3 of the flood: $HELD1; legitimate initiator: $LEGIT1"
    sleep "$(python3 -c "print($FLOOD_SECS / 3)")"
    HELD2=$(adm show stats | sed -n 's/^ike_sas=//p')
    LEGIT2=$(legit)
    note "IKE SAs held by in.ikev2d at 2/3 of the flood: $HELD2; legitimate initiator: $LEGIT2"
    wait "$FLOODER" || true
    FLOOD_LINE=$(tail -1 "$WORK/flood.out")
    note "flooder: $FLOOD_LINE"
    HWM=$(hwm_kib "$IKEV2D")
    AFTER_STATS="$(adm show stats 2>&1 | tr '\n' ' ')"
    note "in.ikev2d after the flood: $AFTER_STATS"
    kill "$SAMPLER" 2>/dev/null || true
    sleep 0.5
    kill -TERM "$TCPDUMP" 2>/dev/null || true
    wait "$TCPDUMP" 2>/dev/null || true
    cp "$WORK/flood.pcap" "$OUT/"
    PEAK_RSS=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$OUT/rss-flood.tsv")
    # Answers by kind, from the capture: responses of 192.0.2.2:500 to IKE_SA_INIT.
    TSHARK_COUNTS=$(tshark -r "$OUT/flood.pcap" -Y "ip.src == 192.0.2.2 && udp.srcport == 500 && isakmp.exchangetype == 34" \
        -T fields -e frame.time_relative -e ip.dst -e isakmp.nextpayload -e isakmp.notify.msgtype 2>/dev/null | python3 -c '
import sys
full = cookie = other = 0
# Full answers after the first COOKIE one: "early" while the first half-open SAs can still
# be alive (less than 29.5 s after the first full answer; in.ikev2d forgets a half-open SA
# after 30 s), "late" after that (the threshold freed again).
early = late = 0
first_full = None
seen_cookie = False
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    t, dst = float(f[0]), f[1]
    # the Next Payload of the header comes first (the field repeats for every payload)
    nxt = f[2].split(",")[0]
    notes = f[3] if len(f) > 3 else ""
    if not dst.startswith("10.99."):
        continue  # the legitimate initiator
    if nxt == "41" and notes.split(",")[0] == "16390":
        cookie += 1
        seen_cookie = True
    elif nxt == "33":
        full += 1
        if first_full is None:
            first_full = t
        if seen_cookie:
            if t - first_full < 29.5:
                early += 1
            else:
                late += 1
    else:
        other += 1
print(f"answers={full + cookie + other} full={full} cookie={cookie} other={other} "
      f"full_after_first_cookie={early} full_after_expiry={late}")
')
    note "capture (tshark): $TSHARK_COUNTS"
    note "in.ikev2d VmRSS: idle $IDLE_RSS KiB, peak sampled $PEAK_RSS KiB, VmHWM $HWM KiB"
fi

# ---- summary -----------------------------------------------------------------------------------------
section "IKE benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), built at $VERSION)"
python3 - "$RESULTS" "$SECS" "$CONC" "$THREADS" "$THRESHOLD" "$FLOOD_COUNT" "$FLOOD_SECS" \
    "$FLOOD_LINE" "$TSHARK_COUNTS" "$LEGIT1" "$LEGIT2" "$IDLE_RSS" "$PEAK_RSS" "$HWM" "$AFTER_STATS" \
    "$HELD1" "$HELD2" \
    <<'PY' | tee "$OUT/summary.txt"
import statistics, sys
(res, secs, conc, threads, thr, fcount, fsecs, fline, tline, l1, l2, idle, peak, hwm,
 after, held1, held2) = sys.argv[1:]
rows = {}
for line in open(res).read().splitlines()[1:]:
    name, rnd, n, rate, cpu, busy, _ = line.split("\t", 6)
    if name in ("ironswan", "strongswan"):
        rows.setdefault(name, []).append((int(rnd), float(rate), float(cpu), float(busy)))
bars = []
if rows:
    print(f"New IKE SAs per second (PSK, Curve25519, AES-GCM-16 128, PRF HMAC-SHA2-256; {secs} s per run, "
          f"{conc} in flight x {threads} generator thread(s)), median of {max(len(v) for v in rows.values())} rounds")
    print()
    print("| responder | IKE SAs/s median | min–max | responder CPU ms per IKE SA | machine busy |")
    print("|---|---:|---|---:|---:|")
    med = {}
    for name in ("ironswan", "strongswan"):
        if name not in rows:
            continue
        r = [x[1] for x in rows[name]]
        med[name] = statistics.median(r)
        cpu = statistics.median(x[2] for x in rows[name])
        busy = statistics.median(x[3] for x in rows[name])
        label = "ours (in.ikev2d + ipsecd)" if name == "ironswan" else "strongSwan charon (kernel-libipsec)"
        print(f"| {label} | {med[name]:.0f} | {min(r):.0f}–{max(r):.0f} | {cpu:.3f} | {busy:.0f}% |")
    print()
    if "strongswan" in med and med["strongswan"] > 0:
        per_round = {}
        for name in ("ironswan", "strongswan"):
            for rnd, rate, *_ in rows[name]:
                per_round.setdefault(rnd, {})[name] = rate
        ratios = [v["ironswan"] / v["strongswan"] for v in per_round.values()
                  if v.get("strongswan") and "ironswan" in v]
        r = med["ironswan"] / med["strongswan"]
        ok = r >= 1.0
        bars.append(ok)
        print(f"ours / strongSwan: {r:.2f}x (median rates; per round {', '.join(f'{x:.2f}' for x in ratios)}) "
              f"(bar: at least 1x) -> {'PASS' if ok else 'MISSED'}")
        cpu = {n: statistics.median(x[2] for x in rows[n]) for n in ("ironswan", "strongswan")}
        if cpu["ironswan"] > 0:
            print(f"responder CPU time per IKE SA: strongSwan / ours = {cpu['strongswan'] / cpu['ironswan']:.2f}x")
if fline:
    f = dict(w.split("=", 1) for w in fline.split() if "=" in w)
    t = dict(w.split("=", 1) for w in tline.split() if "=" in w)
    print()
    print(f"Half-open flood: {f.get('sent')} IKE_SA_INIT requests from distinct spoofed addresses over "
          f"{fsecs} s at in.ikev2d (cookie threshold {thr})")
    print(f"  answers counted by the flooder: full {f.get('full')}, COOKIE {f.get('cookie')}, other {f.get('other')}, "
          f"full after the first COOKIE {f.get('full_after_first_cookie')}")
    print(f"  answers in the capture (tshark): {tline}")
    # The threshold's half-open SAs got full answers; then only COOKIEs until they expire.
    only_cookies = (int(t.get("full", -1)) - int(t.get("full_after_expiry", 0)) == int(thr)
                    and t.get("full_after_first_cookie") == "0"
                    and t.get("other") == "0" and int(t.get("cookie", 0)) > 0)
    bars.append(only_cookies)
    print(f"  above the threshold only COOKIE answers -> {'PASS' if only_cookies else 'MISSED'}")
    def mib(k):
        return f"{int(k) / 1024:.1f} MiB" if k else "?"
    bounded = bool(peak) and int(peak) < int(idle) + 16 * 1024
    bars.append(bounded)
    print(f"  in.ikev2d VmRSS: idle {mib(idle)}, peak during the flood {mib(peak)} (VmHWM {mib(hwm)}); "
          f"IKE SAs held at 1/3 and 2/3 of the flood: {held1} and {held2}")
    print(f"  memory bounded (peak within 16 MiB of idle) -> {'PASS' if bounded else 'MISSED'}")
    def est(line):
        g = dict(w.split("=", 1) for w in line.split() if "=" in w)
        return int(g.get("established", 0)), int(g.get("cookies", 0))
    (e1, c1), (e2, c2) = est(l1), est(l2)
    ok = e1 == 2 and e2 == 2 and c1 >= 2 and c2 >= 2
    bars.append(ok)
    print(f"  legitimate initiator during the flood: {e1}/2 then {e2}/2 IKE SAs, after {c1} and {c2} COOKIE "
          f"exchange(s) -> {'PASS' if ok else 'MISSED'}")
print()
print(f"bars: {sum(bars)} of {len(bars)} pass")
PY
note "raw results: $OUT/"
