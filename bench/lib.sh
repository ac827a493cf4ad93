# Helpers shared by the bench scripts. Source it; do not run it.
# Everything binds to 127.0.0.1 only and lives in a temp dir removed on exit.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
ARTICLE=${ARTICLE:-/articles/csto-summit-2015}
POLL=${POLL:-us-long-term-goals}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tribune-bench.XXXXXX")
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "error: $*" >&2; exit 2; }

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "needs $tool (apt-get install -y wrk nginx-light curl util-linux)"
    done
}

# The release binary: $TRIBUNE_BIN if set, else `cargo build --release` (a no-op when fresh).
tribune_bin() {
    if [[ -n "${TRIBUNE_BIN:-}" ]]; then
        [[ -x "$TRIBUNE_BIN" ]] || die "TRIBUNE_BIN=$TRIBUNE_BIN is not executable"
        echo "$TRIBUNE_BIN"
        return
    fi
    if [[ -z "${NO_BUILD:-}" ]]; then
        (cd "$ROOT" && cargo build --release --quiet) >&2 || die "cargo build --release failed"
    fi
    [[ -x "$ROOT/target/release/tribune" ]] || die "no target/release/tribune (run cargo build --release)"
    echo "$ROOT/target/release/tribune"
}

# A free loopback TCP port.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

# run_pinned CPUS CMD...: CMD pinned to CPUS with taskset, or unpinned when CPUS is empty.
run_pinned() {
    local cpus=$1
    shift
    if [[ -n "$cpus" ]]; then
        taskset -c "$cpus" "$@"
    else
        "$@"
    fi
}

# start_tribune NAME PORT CPUS [extra flags...]: starts a server on a fresh
# database in $TMP/NAME, logs to $TMP/NAME/log, sets TRIBUNE_PID.
start_tribune() {
    local name=$1 port=$2 cpus=$3
    shift 3
    start_tribune_url "$name" "$port" "$cpus" "sqlite://$TMP/$name/tribune.db" "$@"
}

# start_tribune_url NAME PORT CPUS URL [extra flags...]: the same on the
# database at URL (e.g. a postgres:// one); logs to $TMP/NAME/log.
start_tribune_url() {
    local name=$1 port=$2 cpus=$3 url=$4
    shift 4
    local dir="$TMP/$name"
    mkdir -p "$dir"
    (cd "$ROOT" && exec > "$dir/log" 2>&1 && exec env RUST_LOG="${RUST_LOG:-tribune=info,tower_http=warn,sqlx=warn}" \
        ${cpus:+taskset -c "$cpus"} "$BIN" serve \
        --bind "127.0.0.1:$port" \
        --database-url "$url" \
        --content content \
        --max-votes-per-address 0 "$@") &
    TRIBUNE_PID=$!
    PIDS+=("$TRIBUNE_PID")
    wait_ready "http://127.0.0.1:$port/readyz" "$TRIBUNE_PID" "$dir/log"
}

# wait_ready URL PID LOG: waits up to 30 s for URL to answer 200, asking
# every 10 ms (votes.sh --prefill times restarts with it).
wait_ready() {
    local url=$1 pid=$2 log=$3 i
    for i in $(seq 3000); do
        if curl -sf -o /dev/null "$url"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            die "the server exited before it was ready"
        fi
        sleep 0.01
    done
    cat "$log" >&2
    die "$url not ready after 30 s"
}

# forget_pid PID: a process that has ended; the exit trap must not signal its id again.
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do
        [[ "$p" == "$1" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# stop_pid PID: SIGTERM, then wait for it.
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

# cpu_ticks PID...: user+system clock ticks used so far by these processes (all threads).
cpu_ticks() {
    local total=0 pid t
    for pid in "$@"; do
        # Fields after the command name, which is in parentheses and may hold spaces.
        t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
        total=$((total + t))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# sys_ticks: "tasks irq steal" clock ticks of the whole machine so far (/proc/stat):
# tasks = user + nice + system (what processes are charged), irq = irq +
# softirq (the kernel's network work on loopback lands largely here), steal =
# time the hypervisor took. tasks minus the server's and the load tool's own
# CPU is what other processes used during a run: noise.
sys_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4, $7 + $8, $9; exit }' /proc/stat
}

# field NAME FILE: the number after "NAME " on its line in FILE (wrk/vote.lua output).
field() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }

# describe_build: which server binary this run measures (no machine paths).
describe_build() {
    if [[ -n "${TRIBUNE_BIN:-}" ]]; then
        echo "binary given in TRIBUNE_BIN${TRIBUNE_LABEL:+ ($TRIBUNE_LABEL)}"
    elif [[ -n "${NO_BUILD:-}" ]]; then
        echo "target/release as found, not rebuilt (NO_BUILD; the work tree is at $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
    else
        echo "target/release built from the work tree at $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
    fi
}

# idle_check: how busy the machine was over 3 s before the run. Benchmarks on
# a machine that is building or testing something else are noise.
idle_check() {
    local a b
    a=$(sys_ticks)
    sleep 3
    b=$(sys_ticks)
    awk -v a="${a%% *}" -v b="${b%% *}" -v hz="$CLK_TCK" -v n="$(nproc)" 'BEGIN {
        busy = (b - a) / hz / 3
        printf "machine busy before the run: %.2f of %d CPUs%s\n", busy, n,
            (busy > 0.2 ? "  <- WARNING: something else is running; figures will be low and noisy" : "")
    }'
}
