#!/usr/bin/env bash
# Live poll streams: what N open Server-Sent Event streams cost the server.
#
# For each stream count in STREAMS, starts tribune on a fresh temp database
# (with --max-votes-per-address 0 and TRIBUNE_FLAGS) and runs the load tool
# bench/live (tribune-live, built here with cargo), which:
#   1. opens N streams GET /api/v1/polls/<poll>/events, one TCP connection
#      each, from 127.0.0.2, 127.0.0.3, ... (PER_SOURCE each), and counts
#      200s and 503s (past the server's cap a 503 is expected);
#   2. takes the server's memory per open stream from its VmRSS;
#   3. sends LONE_VOTES votes one at a time, each from a new reader, and
#      times how long each takes to show on every open stream; then again
#      with every stream left unread until HOLD_READS_MS after each vote, so
#      that the tool takes no CPU from the server while it fans a vote out
#      (readers are on other machines; the kernel's receive timestamps still
#      date each delivery): the lone-vote goal is held to these;
#   4. runs ROUNDS rounds of two loads, wrk -t1 -c32: bench/vote.lua (votes
#      for PHASE_SECONDS, then DRAIN_SECONDS of GET /healthz), while it
#      reads the poll's true total every 200 ms and times how long each
#      stream takes to catch up with it (staleness), and GET /healthz for
#      PHASE_SECONDS; each with the streams open, then with none (it closes
#      them, waits until the server has let them go, and opens them again
#      for the next round). Acknowledged votes/s and healthz req/s are
#      compared round by round, the two runs of a round back to back, and
#      the goals are held to the median ratios: one run of each kind,
#      minutes apart, moved the votes' ratio by 0.2x from run to run.
# Then, for the same stream count, the tool times the lone votes (only) of
# bench/live's fanout-reference, a bare axum + `watch` fan-out with no
# database, on the same port and CPUs: what this machine gives a server
# that does nothing but the fan-out (REFERENCE=0 skips it).
# Goals, per stream count: lone vote on every stream p99 <= 100 ms;
# votes/s and healthz req/s with the streams open >= 0.80x without;
# staleness p99 <= 1 s; server memory <= 24 KiB per open stream.
#
# The tool reads every stream on one thread and shares the machine with the
# server and wrk (unpinned unless CPUS_* say otherwise); it prints its own
# CPU time next to the server's and wrk's.
#
# Env: STREAMS ("1000 10000 19000"), ROUNDS (5), PHASE_SECONDS (8), DRAIN_SECONDS (2),
#      LONE_VOTES (100), LONE_GAP_MS (1000), HOLD_READS_MS (700, under the
#      gap; 0: only read at once, and the goal is held to those), PER_SOURCE (2000),
#      TRIBUNE_FLAGS (extra server flags; default "--max-streams-per-address 0",
#      set it empty for a server without that flag),
#      CPUS_SERVER / CPUS_TOOL (taskset lists; default: unpinned),
#      REFERENCE (1), TRIBUNE_BIN / NO_BUILD=1 (see lib.sh).
# Exit status: 0 when every stream count meets every goal, 1 when one does
# not, 2 on a setup error.

source "$(dirname "$0")/lib.sh"
need curl wrk awk cargo

STREAMS=${STREAMS:-1000 10000 19000}
ROUNDS=${ROUNDS:-5}
PHASE_SECONDS=${PHASE_SECONDS:-8}
DRAIN_SECONDS=${DRAIN_SECONDS:-2}
# A p99 needs a hundred samples: of 30, it is the slowest.
LONE_VOTES=${LONE_VOTES:-100}
LONE_GAP_MS=${LONE_GAP_MS:-1000}
HOLD_READS_MS=${HOLD_READS_MS:-700}
REFERENCE=${REFERENCE:-1}
PER_SOURCE=${PER_SOURCE:-2000}
CPUS_SERVER=${CPUS_SERVER:-}
CPUS_TOOL=${CPUS_TOOL:-}
# Unset: turn the per-address stream cap off; set (even empty): exactly these flags.
TRIBUNE_FLAGS=${TRIBUNE_FLAGS-"--max-streams-per-address 0"}
read -r -a FLAGS <<< "$TRIBUNE_FLAGS"

# One file per stream, here and in the server (which inherits this limit).
ulimit -n "$(ulimit -Hn)"

echo "building bench/live (tribune-live)..." >&2
CARGO_TARGET_DIR="$BENCH_DIR/live/target" cargo build --release --quiet \
    --manifest-path "$BENCH_DIR/live/Cargo.toml" >&2 || die "cargo build of bench/live failed"
LIVE="$BENCH_DIR/live/target/release/tribune-live"
REF="$BENCH_DIR/live/target/release/fanout-reference"

BIN=$(tribune_bin)
PORT=$(free_port)

echo "tribune live streams: GET /api/v1/polls/$POLL/events x STREAMS=\"$STREAMS\", a fresh server and database for each"
echo "load runs: wrk -t1 -c32, $ROUNDS rounds of votes ${PHASE_SECONDS}s (+${DRAIN_SECONDS}s drain) and GET /healthz ${PHASE_SECONDS}s, with the streams, then without; $LONE_VOTES lone votes ${LONE_GAP_MS} ms apart, streams read at once, then $HOLD_READS_MS ms later"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); server CPUs ${CPUS_SERVER:-all}, tool and wrk CPUs ${CPUS_TOOL:-all}; open files $(ulimit -n)"
echo "tribune: $(describe_build); extra flags: ${TRIBUNE_FLAGS:-none}"
idle_check
echo

# reference N TRIBUNE_OUT: times the lone votes of fanout-reference with N
# streams, and sets them beside Tribune's (from TRIBUNE_OUT's result line).
reference() {
    local n=$1 tribune_out=$2 ref_out="$TMP/reference-$n.txt" rpid ours theirs
    echo "-- the reference, a bare axum + watch fan-out: $n streams, lone votes only"
    # Not through run_pinned: $! must be the reference itself, for its CPU and memory.
    ${CPUS_SERVER:+taskset -c "$CPUS_SERVER"} "$REF" "$PORT" > "$TMP/reference-$n.log" 2>&1 &
    rpid=$!
    PIDS+=("$rpid")
    wait_ready "http://127.0.0.1:$PORT/api/v1/polls/$POLL" "$rpid" "$TMP/reference-$n.log"
    # Its verdict is not ours: only setup errors (exit 2) matter here.
    run_pinned "$CPUS_TOOL" "$LIVE" --lone-only \
        --port "$PORT" --server-pid "$rpid" --streams "$n" --poll "$POLL" --page / \
        --lone-votes "$LONE_VOTES" --lone-gap-ms "$LONE_GAP_MS" --hold-reads-ms "$HOLD_READS_MS" \
        --per-source "$PER_SOURCE" > "$ref_out" 2>&1 || true
    stop_pid "$rpid"
    grep -E 'lone vote|CPU ms' "$ref_out" | sed 's/^/   | /'
    theirs=$(grep '^result ' "$ref_out" | tail -1 || true)
    [[ -n "$theirs" ]] || { echo "   the reference gave no result:"; tail -5 "$ref_out"; return; }
    ours=$(grep '^result ' "$tribune_out" | tail -1 || true)
    local key ratios=""
    for key in lone_all_p50_ms lone_all_p99_ms held_all_p50_ms held_all_p99_ms; do
        local a b
        a=$(grep -o "$key=[0-9.]*" <<< "$ours" | cut -d= -f2)
        b=$(grep -o "$key=[0-9.]*" <<< "$theirs" | cut -d= -f2)
        [[ -n "$a" && -n "$b" ]] || continue
        ratios+=" $key tribune=$a reference=$b ($(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'))"
    done
    echo "   tribune vs the reference:$ratios"
    RESULTS+=("reference streams=$n$(grep -o ' \(open\|lone_all_p50_ms\|lone_all_p99_ms\|held_all_p50_ms\|held_all_p99_ms\)=[0-9.NA]*' <<< "$theirs" | tr -d '\n')")
}

STATUS=0
RESULTS=()
for n in $STREAMS; do
    [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || die "STREAMS holds '$n', not a count"
    echo "== $n streams"
    start_tribune "live-$n" "$PORT" "$CPUS_SERVER" "${FLAGS[@]}"
    pid=$TRIBUNE_PID
    out="$TMP/live-$n.txt"
    rc=0
    run_pinned "$CPUS_TOOL" "$LIVE" \
        --port "$PORT" --server-pid "$pid" --streams "$n" --poll "$POLL" --page "$ARTICLE" \
        --seconds "$PHASE_SECONDS" --drain "$DRAIN_SECONDS" --rounds "$ROUNDS" \
        --lone-votes "$LONE_VOTES" --lone-gap-ms "$LONE_GAP_MS" --hold-reads-ms "$HOLD_READS_MS" --per-source "$PER_SOURCE" \
        --vote-lua "$BENCH_DIR/vote.lua" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
    kill -0 "$pid" 2>/dev/null || echo "   the server is no longer running"
    # The server logs every 503 (a stream over its cap) as an error: count
    # those, show the rest. Colour codes are stripped. Every stage reads all
    # its input (awk, not head), so that no pipe breaks under pipefail.
    log="$TMP/live-$n/log"
    sed -i 's/\x1b\[[0-9;]*m//g' "$log"
    over_cap=$(grep -ciE '(error|warn).*503' "$log" || true)
    other=$(grep -iE 'error|panic|warn' "$log" | grep -cv '503' || true)
    [[ "$over_cap" == 0 ]] || echo "   server log: $over_cap error lines about 503 answers (streams over the cap)"
    if [[ "$other" != 0 ]]; then
        echo "   server log: $other other errors/warnings, the first 20:"
        grep -iE 'error|panic|warn' "$log" | grep -v '503' | awk 'NR <= 20 { print "   | " $0 }'
    fi
    stop_pid "$pid"
    case $rc in
        0) ;;
        1) [[ "$STATUS" == 2 ]] || STATUS=1 ;;
        *) STATUS=2 ;;
    esac
    RESULTS+=("$(grep '^result ' "$out" | tail -1 || echo "result streams=$n error (exit $rc)")")
    if [[ "$REFERENCE" != 0 ]]; then
        reference "$n" "$out"
    fi
    echo
done

echo "summary (one line per stream count):"
printf '%s\n' "${RESULTS[@]}"
exit "$STATUS"
