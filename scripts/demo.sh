#!/usr/bin/env bash
# The README's "run" command: a demonstration on one machine.
# For now: a round trip of packets through the ESP/AH engine, printing the
# result for each SA (crates/ipsec-tools, binary ipsec-roundtrip). It will
# become the two-namespace ipsecd demonstration once the daemon exists.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p ipsec-tools --bin ipsec-roundtrip
exec cargo run --release --quiet -p ipsec-tools --bin ipsec-roundtrip -- "$@"
