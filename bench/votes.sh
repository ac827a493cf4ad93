#!/usr/bin/env bash
# Acknowledged, durable votes per second over HTTP/JSON.
#
# Goal (DESIGN.md, "Measures"): >= 10,000 acknowledged votes/s with the
# default group commit; a commit per vote is the reference (~370/s here).
#
# Starts tribune twice, each on a fresh temp database (SQLite, WAL,
# synchronous=FULL): once with the default --write-batch (group commit), once
# with --write-batch 1 (a commit per vote). For each, wrk with bench/vote.lua
# POSTs {"option": N} (N = 1..4 in turn, Content-Type: application/json, no
# cookie: every request is a new reader) for VOTE_SECONDS, then sends only
# GET /healthz for DRAIN_SECONDS so every vote in flight gets its answer.
# Then it reads GET /api/v1/polls/<poll> and checks that
#     total_votes - 108 (the imported tallies) == number of 201 responses
# i.e. every acknowledged vote is counted and nothing else is: PASS/FAIL.
#
# Mode "crash" runs the batched server again but kills it with SIGKILL half-way
# through the vote window, starts it again on the same database and checks
#     acknowledged <= total_votes - 108 <= sent
# (an acknowledged vote is on disk; one whose answer the kill cut off may or
# may not be). Its votes/s (over the half window) is not a throughput figure.
#
# Env: VOTE_SECONDS (10), DRAIN_SECONDS (3), CONNS (256), THREADS (2),
#      CPUS_SERVER / CPUS_WRK (taskset lists; default: unpinned, all share
#      the 2 cores), ROUNDS (1), MODES ("batched per-vote crash"),
#      TRIBUNE_BIN / NO_BUILD=1 (see lib.sh).
# Exit status: 0 when every count check passes and the batched rate meets
# the goal; 1 otherwise.

source "$(dirname "$0")/lib.sh"
need curl wrk awk

VOTE_SECONDS=${VOTE_SECONDS:-10}
DRAIN_SECONDS=${DRAIN_SECONDS:-3}
CONNS=${CONNS:-256}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
MODES=${MODES:-batched per-vote crash}
CPUS_SERVER=${CPUS_SERVER:-}
CPUS_WRK=${CPUS_WRK:-}
GOAL=10000
IMPORTED=108

BIN=$(tribune_bin)
PORT=$(free_port)
STATUS=0
COUNTS=PASS

echo "tribune vote benchmark: POST /api/v1/polls/$POLL/votes {\"option\": 1..4}, a new reader each time"
echo "wrk -t$THREADS -c$CONNS -d$((VOTE_SECONDS + DRAIN_SECONDS))s --timeout 30s -s bench/vote.lua (votes for ${VOTE_SECONDS}s, then ${DRAIN_SECONDS}s of GET /healthz)"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); server CPUs ${CPUS_SERVER:-all}, wrk CPUs ${CPUS_WRK:-all}"
echo "tribune: $(describe_build)"
idle_check
echo "database: SQLite file in $(df -P "$TMP" | awk 'NR == 2 {print $1}') ($(findmnt -n -o FSTYPE --target "$TMP" 2>/dev/null || echo '?')), WAL, synchronous=FULL"
echo

declare -A RATE ALL
run_mode() {
    local mode=$1 round=$2 flags=()
    case $mode in
        batched | crash) flags=() ;;
        per-vote) flags=(--write-batch 1) ;;
        *) die "unknown mode $mode" ;;
    esac
    local name="$mode-$round"
    start_tribune "$name" "$PORT" "$CPUS_SERVER" "${flags[@]}"
    local pid=$TRIBUNE_PID base="http://127.0.0.1:$PORT"
    local before_total
    before_total=$(curl -sf "$base/api/v1/polls/$POLL" | sed -n 's/.*"total_votes":\([0-9]*\).*/\1/p')
    [[ "$before_total" == "$IMPORTED" ]] || echo "warning: fresh database has total_votes $before_total, expected $IMPORTED"
    local out="$TMP/wrk-$name.txt" cpu0 cpu1 t0 i0 s0 t1 i1 s1
    cpu0=$(cpu_ticks "$pid"); read -r t0 i0 s0 < <(sys_ticks)
    POLL=$POLL VOTE_SECONDS=$VOTE_SECONDS run_pinned "$CPUS_WRK" \
        wrk -t"$THREADS" -c"$CONNS" -d"$((VOTE_SECONDS + DRAIN_SECONDS))s" --timeout 30s \
        -s "$BENCH_DIR/vote.lua" "$base" > "$out" 2>&1 &
    local wrk_pid=$!
    PIDS+=("$wrk_pid")
    local alive=yes
    if [[ "$mode" == crash ]]; then
        # Pull the plug half-way through the vote window: SIGKILL, no shutdown.
        sleep "$((VOTE_SECONDS / 2))"
        cpu1=$(cpu_ticks "$pid")
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
        alive="killed with SIGKILL after $((VOTE_SECONDS / 2)) s, as planned"
    fi
    wait "$wrk_pid" || true
    forget_pid "$wrk_pid"
    read -r t1 i1 s1 < <(sys_ticks)
    if [[ "$mode" == crash ]]; then
        # Start again on the same database and count what survived.
        start_tribune "$name" "$PORT" "$CPUS_SERVER" "${flags[@]}"
        pid=$TRIBUNE_PID
    else
        cpu1=$(cpu_ticks "$pid")
        kill -0 "$pid" 2>/dev/null || alive="NO (it exited)"
    fi
    local poll_json total
    poll_json=$(curl -sf "$base/api/v1/polls/$POLL" || echo '')
    total=$(echo "$poll_json" | sed -n 's/.*"total_votes":\([0-9]*\).*/\1/p')
    local sum_options
    sum_options=$(echo "$poll_json" | grep -o '"votes":[0-9]*' | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
    local acked sent answered window
    acked=$(field votes_acknowledged "$out")
    sent=$(field votes_sent "$out")
    answered=$(field votes_answered "$out")
    window=$(field vote_window_seconds "$out")
    echo "== $mode (round $round)${flags[*]:+: ${flags[*]}}"
    grep -E '^(status|errors|latency_ms)' "$out" | sed 's/^/   /'
    echo "   votes sent $sent, answered $answered, acknowledged (201) $acked; server: $alive"
    echo "   server CPU $(awk -v a="$cpu0" -v b="$cpu1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}') s;" \
         "all processes $(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}') s," \
         "irq+softirq $(awk -v a="$i0" -v b="$i1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}') s," \
         "steal $(awk -v a="$s0" -v b="$s1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}') s" \
         "over $((VOTE_SECONDS + DRAIN_SECONDS)) s x $(nproc) CPUs"
    local verdict=FAIL
    if [[ -n "$total" && -n "$acked" && "$window" != 0 ]]; then
        local counted=$((total - IMPORTED))
        if [[ "$mode" == crash ]]; then
            # Every acknowledged vote must survive; votes sent but never answered
            # (cut off by the kill) may or may not have been committed.
            if [[ "$counted" -ge "$acked" && "$counted" -le "$sent" && "$sum_options" -eq "$total" ]]; then verdict=PASS; fi
            echo "   after restart: poll total_votes $total (options sum to $sum_options): counted $counted;" \
                 "acknowledged $acked <= counted <= sent $sent? -> $verdict" \
                 "($((counted - acked)) committed votes whose answer the kill cut off)"
        else
            if [[ "$counted" -eq "$acked" && "$sum_options" -eq "$total" ]]; then verdict=PASS; fi
            echo "   poll total_votes $total (options sum to $sum_options): counted $counted - acknowledged $acked = $((counted - acked)) -> $verdict"
        fi
        [[ "$mode" == crash ]] && window=$((VOTE_SECONDS / 2))
        RATE[$mode]=$(awk -v n="$acked" -v w="$window" 'BEGIN { printf "%.0f", n / w }')
        ALL[$mode]="${ALL[$mode]:-}${ALL[$mode]:+ }${RATE[$mode]}"
        echo "   acknowledged votes/s: ${RATE[$mode]}  ($acked in ${window} s)"
    else
        echo "   could not read the result (total_votes '$total', acknowledged '$acked', window '$window') -> FAIL"
        [[ "$window" == 0 ]] && echo "   (the vote window never closed: wrk ran shorter than VOTE_SECONDS?)"
        RATE[$mode]=0
    fi
    [[ "$verdict" == PASS ]] || { STATUS=1; COUNTS=FAIL; }
    if grep -qiE 'error|panic|warn' "$TMP/$name/log"; then
        echo "   server log (errors/warnings, first 20 lines):"
        grep -iE 'error|panic|warn' "$TMP/$name/log" | head -20 | sed 's/^/   | /'
    fi
    stop_pid "$pid"
    echo
}

for round in $(seq "$ROUNDS"); do
    for mode in $MODES; do
        run_mode "$mode" "$round"
    done
done

median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A MED
for mode in $MODES; do
    [[ -n "${ALL[$mode]:-}" && "$mode" != crash ]] || continue
    MED[$mode]=$(echo "${ALL[$mode]}" | median)
    echo "$mode: median ${MED[$mode]} acknowledged votes/s (rounds: ${ALL[$mode]})"
done
if [[ -n "${MED[batched]:-}" ]]; then
    verdict=$(awk -v r="${MED[batched]}" -v g="$GOAL" 'BEGIN { print (r >= g) ? "PASS" : "FAIL" }')
    echo "goal >= $GOAL acknowledged votes/s with group commit: $verdict"
    [[ "$verdict" == PASS ]] || STATUS=1
fi
if [[ -n "${MED[batched]:-}" && -n "${MED[per-vote]:-}" && "${MED[per-vote]}" != 0 ]]; then
    echo "ratio batched / per-vote: $(awk -v a="${MED[batched]}" -v b="${MED[per-vote]}" 'BEGIN { printf "%.1f", a / b }')x"
fi
echo "count checks (201s == votes counted; after the kill, none acknowledged lost), all runs: $COUNTS"
exit "$STATUS"
