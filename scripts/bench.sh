#!/usr/bin/env bash
# The core engine benchmarks: criterion (ESP encap+decap per algorithm and size, each next to the
# raw primitive on the same bytes) and the interleaved AES-128-GCM ratio (engine/raw in alternating
# rounds, robust on a shared machine). Prints the figures BENCHMARKS.md reports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==== criterion: cargo bench -p ipsec-core --bench engine ===="
cargo bench -q -p ipsec-core --bench engine 2>/dev/null | tee target/bench-engine.txt | grep -E "^[a-z0-9+-]+/|time:" || true

echo
echo "==== ratio table from the criterion medians ===="
python3 - <<'PY'
import re
rows = {}
cur = None
unit = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6}
for line in open("target/bench-engine.txt", encoding="utf-8"):
    m = re.match(r"^([a-z0-9+-]+)/([a-z+-]+)/(\d+)", line)
    if m:
        cur = m.groups()
    m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", line)
    if m and cur:
        rows.setdefault((cur[0], int(cur[2])), {})[cur[1]] = float(m.group(1)) * unit[m.group(2)]
        cur = None
print(f"{'algorithm':<20} {'bytes':>6} {'engine ns':>10} {'raw ns':>8} {'ratio':>6}")
for (alg, size), v in sorted(rows.items()):
    e, r = v.get("esp-encap+decap"), v.get("raw-seal+open")
    if e and r:
        print(f"{alg:<20} {size:>6} {e:>10.0f} {r:>8.0f} {e / r:>6.2f}")
PY

echo
echo "==== interleaved AES-128-GCM ratio (perfloop ratio) ===="
cargo run -q --release -p ipsec-core --example perfloop -- ratio 41
