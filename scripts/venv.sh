# shellcheck shell=bash
# Sourced by scripts/test.sh and .ci/run (not executed directly).
# ensure_venv: create .venv with the Python packages the interop oracle needs
# (idempotent), and export IRONSWAN_PYTHON pointing at its interpreter.

IRONSWAN_PIP_PACKAGES=(scapy==2.8.0 cryptography)

ensure_venv() {
    local root venv py
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv"
    py="$venv/bin/python"
    if [ -x "$py" ] && "$py" - <<'PY' 2>/dev/null
import sys
import cryptography  # noqa: F401
import scapy
sys.exit(0 if scapy.__version__ == "2.8.0" else 1)
PY
    then
        echo "venv ok: $venv"
    else
        local base="${IRONSWAN_BOOTSTRAP_PYTHON:-}"
        if [ -z "$base" ]; then
            for cand in python3.11 python3; do
                if command -v "$cand" >/dev/null 2>&1; then base="$cand"; break; fi
            done
        fi
        if [ -z "$base" ]; then
            echo "no python3 found to create $venv" >&2
            return 1
        fi
        echo "creating venv $venv with $("$base" --version 2>&1)"
        if [ ! -x "$py" ]; then
            if ! "$base" -m venv "$venv"; then
                # Debian's system python lacks ensurepip without python3-venv:
                # fall back to virtualenv from PyPI.
                rm -rf "$venv"
                "$base" -m pip install --quiet --disable-pip-version-check virtualenv
                "$base" -m virtualenv --quiet "$venv"
            fi
        fi
        "$py" -m pip install --quiet --disable-pip-version-check --upgrade "${IRONSWAN_PIP_PACKAGES[@]}"
    fi
    export IRONSWAN_PYTHON="$py"
}
