#!/usr/bin/env bash
# Throughput of the offline capture tool against the core engine, in the same run.
#
#   scripts/bench-ipsecpcap.sh            # 100,000 packets, 5 timed runs each way
#   PACKETS=20000 RUNS=3 scripts/bench-ipsecpcap.sh
#   THREADS=1 scripts/bench-ipsecpcap.sh  # ipsecpcap --threads 1 (default: the tool's default)
#
# 1. builds ipsecpcap (release) and generates a capture of PACKETS plaintext IPv4/UDP packets
#    of 1400 bytes (IP total length), raw IP link type;
# 2. with an AES-128-GCM (16-octet ICV) transport SA (ESN, replay window 1024, as in the engine
#    bench) checks that encrypt then decrypt gives the plaintext capture back, then times
#    `ipsecpcap encrypt --quiet` and `ipsecpcap decrypt --quiet` RUNS times each;
# 3. runs the engine's criterion bench for the same case
#    (`cargo bench -p ipsec-core --bench engine -- aes128-gcm16/esp-encap+decap/1400`), which
#    times one encapsulation plus one decapsulation per iteration;
# 4. prints packets/s and Gbit/s (of 1400-byte plaintext) for each, and the ratios.
#
# The engine's benchmarked rate is its criterion figure: packets per second, each packet
# encapsulated and decapsulated. The bar: `ipsecpcap decrypt` writing a capture file runs at
# no less than half of it. Also printed: the stricter ratio to the engine's one-direction rate
# (taken as twice the encap+decap rate), rates with the output on tmpfs and to /dev/null, and
# rates from user CPU time alone (the tool's own work; the rest is the kernel's page cache).
# Files go to a temporary directory under ${TMPDIR:-/tmp} (and /dev/shm), removed at exit.
#
# Each output file is timed two ways: `new` (the output is removed, untimed, before each run)
# and `replaced` (the previous run's output, as large, is there: the tool's open with O_TRUNC
# first frees its page cache and blocks, and on ext4 the close of a file that was truncated to
# zero and rewritten starts the writeback of all of it (auto_da_alloc); both count in the
# timed run).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKETS="${PACKETS:-100000}"
RUNS="${RUNS:-5}"
SIZE=1400

section() { printf '\n==== %s ====\n' "$*"; }

section "build (release)"
cargo build --release -q -p ipsec-tools --bin ipsecpcap
BIN="$PWD/target/release/ipsecpcap"
TARGS=()
[ -n "${THREADS:-}" ] && TARGS=(--threads "$THREADS")

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-ipsecpcap.XXXXXX")"
trap 'rm -rf "$work"' EXIT

section "capture: $PACKETS packets of $SIZE bytes"
python3 - "$work/plain.pcap" "$PACKETS" "$SIZE" <<'PY'
import struct, sys
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
payload = bytes((i * 7 + 3) & 0xff for i in range(size - 28))
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 101))
    for i in range(n):
        udp = struct.pack("!HHHH", 40000 + (i & 1023), 5001, size - 20, 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, i & 0xffff, 0x4000, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        f.write(struct.pack("<IIII", 1700000000 + i // 1000, (i % 1000) * 1000, size, size))
        f.write(ip + udp)
PY
ls -l "$work/plain.pcap" | awk '{print $5 " bytes"}'

cat > "$work/sa.ipseckey" <<'EOF'
# AES-128-GCM, 16-octet ICV: 16-byte key + 4-byte salt, as in the engine bench.
add esp spi 0x1234 src 10.0.0.1 dst 10.0.0.2 encr_alg aes-gcm \
    encrkey 5a5b58595e5f5c5d52535051565754554a4b4849 replay 1024 esn
EOF

# Runs a command RUNS times, removing the file FRESH (unless "-") before each run, untimed;
# prints one line per run: wall, user and system seconds.
timed_runs() {
    python3 - "$RUNS" "$@" <<'PY'
import os, resource, subprocess, sys, time
runs, fresh, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
for _ in range(runs):
    if fresh != "-" and os.path.exists(fresh):
        os.unlink(fresh)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{t1 - t0:.6f} {r1.ru_utime - r0.ru_utime:.6f} {r1.ru_stime - r0.ru_stime:.6f}")
PY
}

# Output sinks: a file next to the input (page cache of $TMPDIR's file system), new or
# replaced (see above), the same on tmpfs when /dev/shm exists, and /dev/null (processing and
# output formatting only).
sinks=("file-new:$work/out.pcap" "file-replaced:$work/out.pcap")
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    shm="$(mktemp -d /dev/shm/bench-ipsecpcap.XXXXXX)"
    trap 'rm -rf "$work" "$shm"' EXIT
    sinks+=("tmpfs-new:$shm/out.pcap" "tmpfs-replaced:$shm/out.pcap")
fi
sinks+=("null:/dev/null")

section "ipsecpcap encrypt and decrypt --quiet ${TARGS[*]}, $RUNS runs per output sink"
"$BIN" encrypt --quiet "${TARGS[@]}" --sa "$work/sa.ipseckey" "$work/plain.pcap" "$work/enc.pcap" \
    >/dev/null
"$BIN" decrypt --quiet "${TARGS[@]}" --sa "$work/sa.ipseckey" "$work/enc.pcap" "$work/dec.pcap" \
    >/dev/null
if ! cmp -s "$work/plain.pcap" "$work/dec.pcap"; then
    echo "decrypted capture differs from the plaintext capture" >&2
    exit 1
fi
rm -f "$work/dec.pcap"
"$BIN" verify --quiet "${TARGS[@]}" --sa "$work/sa.ipseckey" "$work/enc.pcap" | tail -n 1
: > "$work/times"
for op in encrypt decrypt; do
    input="$work/plain.pcap"
    [ "$op" = decrypt ] && input="$work/enc.pcap"
    for s in "${sinks[@]}"; do
        name="${s%%:*}"
        out="${s#*:}"
        cmd=("$BIN" "$op" --quiet "${TARGS[@]}" --sa "$work/sa.ipseckey" "$input" "$out")
        fresh=-
        case "$name" in
        *-new) fresh="$out" ;;
        # The previous run's output, untimed.
        *-replaced) "${cmd[@]}" >/dev/null ;;
        esac
        timed_runs "$fresh" "${cmd[@]}" |
            while read -r w u y; do
                echo "$op $name $w $u $y" | tee -a "$work/times"
            done
        if [ "$out" != /dev/null ]; then rm -f "$out"; fi
    done
done

section "engine: criterion aes128-gcm16/esp-encap+decap/1400"
cargo bench -q -p ipsec-core --bench engine -- 'aes128-gcm16/esp-encap\+decap/1400' 2>&1 |
    grep -E 'time:|thrpt:' || true
est="target/criterion/aes128-gcm16/esp-encap+decap/1400/new/estimates.json"
engine_ns=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$est")

section "results ($PACKETS packets of $SIZE bytes, AES-128-GCM, median of $RUNS runs)"
python3 - "$PACKETS" "$SIZE" "$engine_ns" "$work/times" <<'PY'
import statistics, sys
n, size, eng_ns, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rows = {}
for line in open(path):
    op, sink, w, u, s = line.split()
    rows.setdefault((op, sink), []).append((float(w), float(u), float(s)))
def rate(pps):
    return f"{pps:>12,.0f} packets/s {pps * size * 8 / 1e9:>7.2f} Gbit/s"
pair = 1e9 / eng_ns
one = 2 * pair
print(f"{'engine encap+decap (criterion median)':<46}{rate(pair)}")
print(f"{'engine, one direction (2 x encap+decap)':<46}{rate(one)}")
for (op, sink), v in rows.items():
    wall = statistics.median(x[0] for x in v)
    cpu = statistics.median(x[1] + x[2] for x in v)
    user = statistics.median(x[1] for x in v)
    print(f"{'ipsecpcap ' + op + ' -> ' + sink + ' (wall)':<46}{rate(n / wall)}"
          f"   tool/engine {n / wall / pair:.2f}, tool/one-direction {n / wall / one:.2f}")
    print(f"{'   same, user CPU time only':<46}{rate(n / user)}   (user {user:.3f} s, user+sys {cpu:.3f} s)")
print("bar: ipsecpcap decrypt >= 0.5 x the engine's benchmarked rate (criterion, encap+decap):")
for sink in ("file-new", "file-replaced", "tmpfs-new", "tmpfs-replaced", "null"):
    v = rows.get(("decrypt", sink))
    if not v:
        continue
    wall = statistics.median(x[0] for x in v)
    user = statistics.median(x[1] for x in v)
    for what, t in (("wall", wall), ("user CPU", user)):
        r = n / t / pair
        print(f"  output to {sink:<14} {what:<9}: {r:5.2f} x  "
              f"({n / t / one:4.2f} x the one-direction rate) -> {'PASS' if r >= 0.5 else 'below'}")
PY
