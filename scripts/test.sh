#!/usr/bin/env bash
# The whole test suite (the README's test command). Run from anywhere.
#   - sets up .venv (scapy oracle) if missing and exports IRONSWAN_PYTHON,
#   - runs the scapy oracle self-check,
#   - cargo test (all targets, then doctests; fuzz regression inputs are
#     replayed by ordinary tests),
#   - if IRONSWAN_FUZZ_SECONDS is set and fuzz/ exists: a short cargo-fuzz run
#     of every target.
# Later end-to-end tests use network namespaces and need root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n==== %s ====\n' "$*"; }

section "Python venv"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv
export IRONSWAN_PYTHON

section "scapy oracle self-check"
"$IRONSWAN_PYTHON" interop/test_oracle.py

section "cargo build --workspace --bins --lib"
# End-to-end tests run other packages' binaries (ipseckey's tests start target/*/ipsecd) and
# preload libipsec_sock.so (a cdylib, which cargo test does not build).
cargo build --workspace --bins --lib

section "cargo test --workspace --all-targets"
cargo test --workspace --all-targets

section "cargo test --workspace --doc"
cargo test --workspace --doc

if [ -n "${IRONSWAN_FUZZ_SECONDS:-}" ] && [ -d fuzz ]; then
    if ! [[ "$IRONSWAN_FUZZ_SECONDS" =~ ^[1-9][0-9]*$ ]]; then
        echo "IRONSWAN_FUZZ_SECONDS must be a positive integer, got '$IRONSWAN_FUZZ_SECONDS'" >&2
        exit 2
    fi
    section "fuzz smoke run (${IRONSWAN_FUZZ_SECONDS}s per target)"
    if ! cargo fuzz --help >/dev/null 2>&1; then
        echo "installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    # cargo-fuzz needs nightly flags (-Z sanitizer); RUSTC_BOOTSTRAP lets the
    # stable toolchain accept them.
    export RUSTC_BOOTSTRAP=1
    targets=$(cargo fuzz list)
    if [ -z "$targets" ]; then
        echo "fuzz/ has no targets"
    fi
    for t in $targets; do
        section "cargo fuzz run $t"
        # Start from the committed seeds (fuzz/seeds/<target>, read only); new inputs go
        # to the local fuzz/corpus/<target>.
        corpus=(fuzz/corpus/"$t")
        mkdir -p "${corpus[0]}"
        if [ -d fuzz/seeds/"$t" ]; then
            corpus+=(fuzz/seeds/"$t")
        fi
        cargo fuzz run "$t" "${corpus[@]}" -- -max_total_time="$IRONSWAN_FUZZ_SECONDS"
    done
fi

section "test suite passed"
