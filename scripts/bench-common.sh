# shellcheck shell=bash
# Helpers shared by the root benchmark scripts (bench-tunnel.sh, bench-ike.sh); sourced, not
# run.

section() { printf '\n==== %s ====\n' "$*"; }
note() { printf '%s\n' "$*"; }

APT_UPDATED=0
# apt_install PACKAGE...: installs those missing (apt-get update once, if the first try fails).
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    note "apt-get install ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
        if [ "$APT_UPDATED" = 0 ]; then
            APT_UPDATED=1
            apt-get update -q >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
        else
            return 1
        fi
    fi
}

BG_PID=
# start_bg NS LOGFILE CMD...: starts CMD in namespace NS in the background (at niceness
# $NICE, if set), remembers its pid in BG_PID and in the array PIDS (the caller's exit trap
# stops them).
start_bg() {
    local ns="$1" log="$2"
    shift 2
    ip netns exec "$ns" nice -n "${NICE:-0}" "$@" >"$log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
    local n=$(( $1 * 10 ))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        n=$(( n - 1 ))
    done
    return 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# busy and total ticks of the whole machine
machine_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# shellcheck disable=SC2034 # used by the scripts that source this file
HZ=$(getconf CLK_TCK)
