#!/usr/bin/env bash
# The README's "run" command: a demonstration on one machine.
# For now (the daemon comes later): a round trip of packets through the ESP/AH engine with the
# result per SA (binary ipsec-roundtrip), then the offline capture tool on the files in
# examples/: encrypt a capture with SAs written in ipseckey(8) syntax, verify it (replay and ICV
# verdicts per packet), decrypt it and compare with the original. It will become the
# two-namespace ipsecd demonstration once the daemon exists.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet -p ipsec-tools --bin ipsec-roundtrip --bin ipsecpcap

echo "== ESP/AH engine round trip =="
target/release/ipsec-roundtrip "$@"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo
echo "== ipsecpcap: encrypt examples/plain.pcap with examples/sas.ipseckey =="
target/release/ipsecpcap encrypt --sa examples/sas.ipseckey examples/plain.pcap "$work/enc.pcap"
echo
echo "== ipsecpcap: verify the encrypted capture =="
target/release/ipsecpcap verify --sa examples/sas.ipseckey "$work/enc.pcap"
echo
echo "== ipsecpcap: decrypt and compare with the original =="
target/release/ipsecpcap decrypt --quiet --sa examples/sas.ipseckey "$work/enc.pcap" "$work/dec.pcap"
cmp examples/plain.pcap "$work/dec.pcap"
echo "decrypted capture is identical to examples/plain.pcap"
