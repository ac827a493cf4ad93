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
# Growth: `bench/votes.sh --prefill 0,1000000,10000000` measures instead, on
# one database, at each size in turn (ascending): fill the poll to that many
# votes cast (bench/prefill.sh: one bulk insert through the sqlite3 CLI, the
# server stopped; the votes measured at the sizes before count towards it),
# then time a restart from launch to the first 200 from /readyz, measure
# acknowledged votes/s as the batched mode does (with the same exact count
# check), stop the server, and time `tribune export POLL` in CSV and in JSON
# to a pipe (/usr/bin/time -v: elapsed and maximum RSS; the rows are counted).
# Goals (the growth issue): at the largest size, votes/s >= 0.9x the
# smallest size's figure of the same run; export peak memory <= 64 MiB;
# restart <= 1 s to /readyz. Needs sqlite3 and GNU time (apt-get install -y
# sqlite3 time). 10 M votes take about 2.5 GB of disk in the temp dir.
#
# Env: VOTE_SECONDS (10), DRAIN_SECONDS (3), CONNS (256), THREADS (2),
#      CPUS_SERVER / CPUS_WRK (taskset lists; default: unpinned, all share
#      the 2 cores), ROUNDS (1), MODES ("batched per-vote crash"),
#      TRIBUNE_BIN / NO_BUILD=1 (see lib.sh).
# Exit status: 0 when every count check passes and the batched rate meets
# the goal; 1 otherwise.

source "$(dirname "$0")/lib.sh"
need curl wrk awk

PREFILL=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --prefill)
            [[ $# -ge 2 ]] || die "--prefill needs sizes, e.g. --prefill 0,1000000,10000000"
            PREFILL=$2
            shift 2
            ;;
        --prefill=*) PREFILL=${1#--prefill=}; shift ;;
        *) die "unknown argument $1 (the options are described at the top of $0)" ;;
    esac
done

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

# mib KIB: kibibytes as mebibytes, one decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# time_export FORMAT DB: runs `tribune export` to a pipe that counts what
# it gets; prints "seconds peak_kib count" (count: lines for CSV, votes for
# JSON) or fails with the export's error.
time_export() {
    local format=$1 db=$2 count times="$TMP/time-$1" err="$TMP/export-$1.err"
    local counter=(wc -l)
    [[ "$format" == json ]] && counter=(grep -c '"cast_at"')
    count=$(/usr/bin/time -v -o "$times" "$BIN" export "$POLL" --format "$format" \
        --database-url "sqlite://$db" 2> "$err" | "${counter[@]}") || true
    if ! grep -q 'Exit status: 0' "$times"; then
        cat "$err" "$times" >&2
        return 1
    fi
    [[ -s "$err" ]] && sed 's/^/   export stderr: /' "$err"
    local elapsed peak
    elapsed=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$times")
    peak=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$times")
    echo "$elapsed $peak $count"
}

# run_growth: see "Growth" at the top.
run_growth() {
    command -v sqlite3 >/dev/null 2>&1 || die "needs sqlite3 (apt-get install -y sqlite3)"
    [[ -x /usr/bin/time ]] || die "needs GNU time at /usr/bin/time (apt-get install -y time)"
    local sizes size last=-1
    IFS=, read -r -a sizes <<< "$PREFILL"
    for size in "${sizes[@]}"; do
        [[ "$size" =~ ^[0-9]+$ && "$size" -gt "$last" ]] || die "--prefill takes ascending whole numbers, e.g. 0,1000000,10000000"
        last=$size
    done
    local name=growth db="$TMP/growth/tribune.db"
    # Create, migrate and import on the first start; then fill with the server stopped.
    start_tribune "$name" "$PORT" "$CPUS_SERVER"
    stop_pid "$TRIBUNE_PID"
    local -a rows=()
    local first_rate="" failed=""
    for size in "${sizes[@]}"; do
        echo "== growth: the poll filled to $size votes cast"
        "$BENCH_DIR/prefill.sh" "$db" "$POLL" "$size" | sed 's/^/   /'
        # The fill leaves up to gigabytes of dirty pages for the kernel to
        # write back (it runs with synchronous=OFF); measured at once, every
        # fsync of the server would wait behind that. A server's database is
        # not in that state: let it reach the disk first.
        sync
        local bytes t0 t1 restart_ms
        # The database and its WAL, which may not exist.
        bytes=$({ stat -c %s "$db" "$db-wal" 2>/dev/null || true; } | awk '{ s += $1 } END { printf "%.0f\n", s }')
        echo "   database $(mib $((bytes / 1024))) MiB"
        t0=$(date +%s%N)
        start_tribune "$name" "$PORT" "$CPUS_SERVER"
        t1=$(date +%s%N)
        restart_ms=$(((t1 - t0) / 1000000))
        echo "   restart to the first 200 from /readyz: $restart_ms ms"
        local pid=$TRIBUNE_PID base="http://127.0.0.1:$PORT" before after out="$TMP/wrk-growth-$size.txt"
        before=$(curl -sf "$base/api/v1/polls/$POLL" | sed -n 's/.*"total_votes":\([0-9]*\).*/\1/p')
        POLL=$POLL VOTE_SECONDS=$VOTE_SECONDS run_pinned "$CPUS_WRK" \
            wrk -t"$THREADS" -c"$CONNS" -d"$((VOTE_SECONDS + DRAIN_SECONDS))s" --timeout 30s \
            -s "$BENCH_DIR/vote.lua" "$base" > "$out" 2>&1 || true
        after=$(curl -sf "$base/api/v1/polls/$POLL" | sed -n 's/.*"total_votes":\([0-9]*\).*/\1/p')
        local acked window rate=0 verdict=FAIL
        acked=$(field votes_acknowledged "$out")
        window=$(field vote_window_seconds "$out")
        grep -E '^(status|errors|latency_ms)' "$out" | sed 's/^/   /'
        if [[ -n "$before" && -n "$after" && -n "$acked" && "$window" != 0 ]]; then
            [[ $((after - before)) -eq "$acked" ]] && verdict=PASS
            rate=$(awk -v n="$acked" -v w="$window" 'BEGIN { printf "%.0f", n / w }')
        fi
        echo "   total_votes $before -> $after: counted $((after - before)) - acknowledged $acked -> $verdict"
        echo "   acknowledged votes/s: $rate"
        [[ "$verdict" == PASS ]] || { STATUS=1; COUNTS=FAIL; }
        first_rate=${first_rate:-$rate}
        stop_pid "$pid"
        local cast=$((after - IMPORTED)) csv json csv_ok json_ok
        csv=$(time_export csv "$db") || die "tribune export --format csv failed"
        json=$(time_export json "$db") || die "tribune export --format json failed"
        # CSV: the tallies' header, the options, a blank line, the votes' header, the votes.
        csv_ok=FAIL; [[ "${csv##* }" -eq $((cast + 7)) ]] && csv_ok=PASS
        json_ok=FAIL; [[ "${json##* }" -eq "$cast" ]] && json_ok=PASS
        read -r csv_s csv_kib _ <<< "$csv"
        read -r json_s json_kib _ <<< "$json"
        echo "   export csv: $csv_s s, peak RSS $(mib "$csv_kib") MiB, ${csv##* } lines for $cast votes -> $csv_ok"
        echo "   export json: $json_s s, peak RSS $(mib "$json_kib") MiB, ${json##* } votes of $cast -> $json_ok"
        [[ "$csv_ok" == PASS && "$json_ok" == PASS ]] || { STATUS=1; COUNTS=FAIL; }
        rows+=("$size $cast $rate $restart_ms $csv_s $csv_kib $json_s $json_kib $bytes")
        echo
    done
    echo "growth summary (votes/s measured from 'prefill' votes on, the database then db_MiB; exports of the 'cast' votes after that run):"
    printf '   %10s %10s %9s %6s %9s %9s %9s %9s %10s %9s\n' prefill cast votes/s ratio restart csv_s csv_MiB json_s json_MiB db_MiB
    local row peak_max=0 restart_max=0 ratio=0
    for row in "${rows[@]}"; do
        read -r size cast rate restart_ms csv_s csv_kib json_s json_kib bytes <<< "$row"
        ratio=$(awk -v r="$rate" -v f="$first_rate" 'BEGIN { printf "%.2f", (f > 0) ? r / f : 0 }')
        printf '   %10s %10s %9s %6s %8sms %9s %9s %9s %9s %10s\n' "$size" "$cast" "$rate" "$ratio" "$restart_ms" \
            "$csv_s" "$(mib "$csv_kib")" "$json_s" "$(mib "$json_kib")" "$(mib $((bytes / 1024)))"
        ((csv_kib > peak_max)) && peak_max=$csv_kib
        ((json_kib > peak_max)) && peak_max=$json_kib
        ((restart_ms > restart_max)) && restart_max=$restart_ms
    done
    local v
    v=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9) ? "PASS" : "FAIL" }')
    echo "goal: votes/s at the largest size >= 0.9x the smallest's: ${ratio}x -> $v"
    [[ "$v" == PASS ]] || failed=yes
    v=$( ((peak_max <= 65536)) && echo PASS || echo FAIL)
    echo "goal: export peak memory <= 64 MiB: $(mib "$peak_max") MiB at most -> $v"
    [[ "$v" == PASS ]] || failed=yes
    v=$( ((restart_max <= 1000)) && echo PASS || echo FAIL)
    echo "goal: restart <= 1 s to /readyz: $restart_max ms at most -> $v"
    [[ "$v" == PASS ]] || failed=yes
    echo "count checks (201s == votes counted; every vote exported), all sizes: $COUNTS"
    [[ -z "$failed" ]] || STATUS=1
    exit "$STATUS"
}

if [[ -n "$PREFILL" ]]; then
    run_growth
fi

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
