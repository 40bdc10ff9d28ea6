#!/usr/bin/env bash
# libipsec_sock.so's cost for sockets that do not use IP_SEC_OPT: 1,000,000
# setsockopt(SO_RCVBUF) calls without and with LD_PRELOAD, in alternating rounds of the same
# run (the machine is shared: the ratio of the medians is the figure). Bar: within 5%.
#   scripts/bench-sockopt.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-21}"
cargo build -q --release -p ipsec-sock
lib="$PWD/target/release/libipsec_sock.so"
bin="$PWD/target/release/setsockopt_bench"
gcc -O2 -Wall -Werror crates/ipsec-sock/examples/setsockopt_bench.c -o "$bin"
python3 - "$bin" "$lib" "$rounds" <<'PY'
import os, statistics, subprocess, sys
bench, lib, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def run(preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = lib
    return int(subprocess.run([bench, "1000000"], env=env, check=True,
                              capture_output=True, text=True).stdout)
plain, pre = [], []
run(False); run(True)  # warm up
for i in range(rounds):
    # Alternate which goes first, so drift affects both alike.
    for p in ((False, True) if i % 2 == 0 else (True, False)):
        (pre if p else plain).append(run(p))
mp, mq = statistics.median(plain), statistics.median(pre)
print(f"1,000,000 x setsockopt(SO_RCVBUF), {rounds} rounds each, medians:")
print(f"  without LD_PRELOAD: {mp / 1e6:8.1f} ms ({mp / 1e6:.0f} ns/call)")
print(f"  with libipsec_sock: {mq / 1e6:8.1f} ms ({mq / 1e6:.0f} ns/call)")
print(f"  ratio with/without: {mq / mp:.4f} (bar: <= 1.05)")
PY
