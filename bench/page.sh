#!/usr/bin/env bash
# Article page throughput: tribune vs nginx serving the same bytes as a static file.
#
# Goal (DESIGN.md, "Measures"): tribune >= 0.9 x nginx, same load, same run.
#
# Layouts (LAYOUTS, default "pinned shared"; the first is the headline):
#   pinned  the server under test is pinned to CPU 1 (taskset -c 1), wrk to
#           CPU 0 (taskset -c 0). Each server gets exactly one core and the
#           load tool never competes with it. nginx: worker_processes 1;
#           tribune: tokio sizes its pool from the affinity mask -> 1 worker.
#   shared  nothing pinned: server and wrk share both cores. nginx:
#           worker_processes 2; tribune: 2 tokio workers.
# Both servers get the identical wrk command. Each round runs tribune then
# nginx (alternating which goes first), each after a 2 s warm-up; the figure
# is the median over the rounds in which no other process used more than 2%
# of the machine ("clean" rounds; all rounds, flagged, if none was clean).
#
# With BR=1 it also compares `Accept-Encoding: br`: tribune compresses the page
# on every request; nginx serves the very bytes tribune sent, precompressed.
#
# Env: DURATION (10s), CONNS (64), THREADS (2), ROUNDS (5), LAYOUTS, BR,
#      TRIBUNE_BIN (use this binary, no build), NO_BUILD=1 (use target/release as is).
# Exit status: 0 when the headline ratio meets the goal, 1 when it does not.

source "$(dirname "$0")/lib.sh"
need curl wrk nginx taskset awk

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
LAYOUTS=${LAYOUTS:-pinned shared}
BR=${BR:-0}
GOAL=0.9
DURATION_S=${DURATION%s}
[[ "$DURATION_S" =~ ^[0-9]+$ ]] || die "DURATION must be in seconds, like 10s"
NOISE_LIMIT=$(awk -v d="$DURATION_S" -v n="$(nproc)" 'BEGIN { print 0.02 * d * n }')
[[ $(nproc) -ge 2 ]] || die "needs at least 2 CPUs for the pinned layout"

BIN=$(tribune_bin)
TPORT=$(free_port)
NPORT=$(free_port)
[[ "$TPORT" != "$NPORT" ]] || NPORT=$((TPORT + 1))

# --- the page, exactly as tribune serves it to a reader without a cookie ---
start_tribune fetch "$TPORT" ""
WWW="$TMP/www"
mkdir -p "$WWW/articles" "$WWW/br/articles"
curl -sf -o "$WWW$ARTICLE" "http://127.0.0.1:$TPORT$ARTICLE"
curl -sf -H 'Accept-Encoding: br' -o "$WWW/br$ARTICLE" "http://127.0.0.1:$TPORT$ARTICLE"
curl -sf -D "$TMP/tribune.headers" -o /dev/null "http://127.0.0.1:$TPORT$ARTICLE"
stop_pid "$TRIBUNE_PID"
chmod -R a+rX "$TMP"
PAGE_BYTES=$(wc -c < "$WWW$ARTICLE")
BR_BYTES=$(wc -c < "$WWW/br$ARTICLE")

# nginx sends the same response headers tribune does (security headers,
# cache-control, vary), so both answers are about the same size on the wire.
hdr() { grep -i "^$1:" "$TMP/tribune.headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
nginx_conf() {
    local workers=$1 conf="$TMP/nginx.conf"
    cat > "$conf" <<CONF
daemon off;
master_process on;
worker_processes $workers;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=64 inactive=60s;
    server_tokens off;
    client_body_temp_path $TMP/nginx-body;
    proxy_temp_path $TMP/nginx-proxy;
    fastcgi_temp_path $TMP/nginx-fastcgi;
    uwsgi_temp_path $TMP/nginx-uwsgi;
    scgi_temp_path $TMP/nginx-scgi;
    server {
        listen 127.0.0.1:$NPORT;
        root $WWW;
        default_type "text/html; charset=utf-8";
        etag off;
        add_header Cache-Control "$(hdr cache-control)";
        add_header Vary "Cookie";
        add_header Cross-Origin-Opener-Policy "$(hdr cross-origin-opener-policy)";
        add_header X-Frame-Options "$(hdr x-frame-options)";
        add_header Permissions-Policy "$(hdr permissions-policy)";
        add_header Referrer-Policy "$(hdr referrer-policy)";
        add_header X-Content-Type-Options "$(hdr x-content-type-options)";
        add_header Content-Security-Policy "$(hdr content-security-policy)";
        location /br/ {
            add_header Content-Encoding br;
            add_header Vary "Cookie, Accept-Encoding";
            add_header Cache-Control "$(hdr cache-control)";
        }
    }
}
CONF
    echo "$conf"
}

start_nginx() {
    local cpus=$1 workers=$2 conf
    conf=$(nginx_conf "$workers")
    nginx -t -q -c "$conf" -p "$TMP" 2>/dev/null || { nginx -t -c "$conf" -p "$TMP"; die "bad nginx config"; }
    # exec: $! must be nginx's master itself, so that stopping it stops nginx.
    (exec ${cpus:+taskset -c "$cpus"} nginx -c "$conf" -p "$TMP" 2>>"$TMP/nginx-error.log") &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_ready "http://127.0.0.1:$NPORT$ARTICLE" "$NGINX_PID" "$TMP/nginx-error.log"
}

# bench LABEL URL WRK_CPUS SERVER_PIDS... [-- wrk header args]: one timed wrk run.
# Prints "rps server_cpu_seconds wrk_cpu_seconds bytes_per_response non2xx errors".
bench() {
    local label=$1 url=$2 wrk_cpus=$3
    shift 3
    local pids=() hdrs=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do pids+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    hdrs=("$@")
    local out="$TMP/wrk-$label.txt"
    run_pinned "$wrk_cpus" wrk -t"$THREADS" -c"$CONNS" -d2s "${hdrs[@]}" "$url" > /dev/null
    local before after wall_start wall_end
    local sys_before sys_after
    sys_before=$(sys_ticks)
    before=$(cpu_ticks "${pids[@]}")
    local TIMEFORMAT='%U %S'
    { time run_pinned "$wrk_cpus" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${hdrs[@]}" "$url" > "$out" ; } 2> "$TMP/time.txt"
    after=$(cpu_ticks "${pids[@]}")
    sys_after=$(sys_ticks)
    cat "$out" >> "$TMP/wrk-all.txt"
    local rps reqs bytes non2xx sockerr
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sockerr=$(awk '/Socket errors:/ {print $0}' "$out" | sed 's/^ *//')
    read -r reqs bytes < <(awk '/requests in/ {print $1, $5}' "$out")
    local p50 p99
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    awk -v r="$rps" -v b="$before" -v a="$after" -v hz="$CLK_TCK" -v t="$(cat "$TMP/time.txt")" \
        -v n="${non2xx:-0}" -v p50="$p50" -v p99="$p99" -v e="${sockerr:-}" \
        -v s0="$sys_before" -v s1="$sys_after" \
        'BEGIN {
            split(t, w, " "); split(s0, x, " "); split(s1, y, " ")
            srv = (a - b) / hz; load = w[1] + w[2]
            other = (y[1] - x[1]) / hz - srv - load; if (other < 0) other = 0
            printf "%.0f %.2f %.2f %.2f %.2f %.2f %d %s %s %s\n", r, srv, load, (y[2] - x[2]) / hz, other, (y[3] - x[3]) / hz, n, p50, p99, (e == "" ? "-" : "ERR")
        }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "tribune page benchmark: GET $ARTICLE ($PAGE_BYTES bytes; br $BR_BYTES bytes)"
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency; $ROUNDS rounds; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "tribune: $(describe_build); $(nginx -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
idle_check
echo

ROWFMT='%-6s %-8s %8s %10s %10s %7s %8s %8s %7s %9s %9s %s\n'
HEADLINE=""
STATUS=0
run_layout() {
    local layout=$1 encoding=$2 scpus wcpus workers
    case $layout in
        pinned) scpus=1; wcpus=0; workers=1 ;;
        shared) scpus=""; wcpus=""; workers=2 ;;
        *) die "unknown layout $layout" ;;
    esac
    local tpath="$ARTICLE" npath="$ARTICLE" hdrs=()
    if [[ "$encoding" == br ]]; then
        npath="/br$ARTICLE"
        hdrs=(-H 'Accept-Encoding: br')
    fi
    start_tribune "tribune-$layout" "$TPORT" "$scpus"
    local tpid=$TRIBUNE_PID
    start_nginx "$scpus" "$workers"
    # The master and its workers (children), for the CPU accounting.
    local npids=("$NGINX_PID")
    sleep 0.2
    mapfile -t -O 1 npids < <(pgrep -P "$NGINX_PID")
    echo "== layout $layout, encoding ${encoding}: server CPUs ${scpus:-0-1}, wrk CPUs ${wcpus:-0-1}, nginx worker_processes $workers"
    printf "$ROWFMT" round server 'req/s' 'srv-cpu-s' 'wrk-cpu-s' 'irq-s' 'other-s' 'steal-s' non2xx p50 p99 sockerr
    local r t n clean=0 noisy
    : > "$TMP/t.txt"; : > "$TMP/n.txt"; : > "$TMP/ratio.txt"
    : > "$TMP/t-all.txt"; : > "$TMP/n-all.txt"
    for r in $(seq "$ROUNDS"); do
        # Alternate which server goes first, so a slow drift hits both alike.
        if (( r % 2 )); then
            t=$(bench "t$layout$encoding$r" "http://127.0.0.1:$TPORT$tpath" "$wcpus" "$tpid" -- "${hdrs[@]}")
            n=$(bench "n$layout$encoding$r" "http://127.0.0.1:$NPORT$npath" "$wcpus" "${npids[@]}" -- "${hdrs[@]}")
        else
            n=$(bench "n$layout$encoding$r" "http://127.0.0.1:$NPORT$npath" "$wcpus" "${npids[@]}" -- "${hdrs[@]}")
            t=$(bench "t$layout$encoding$r" "http://127.0.0.1:$TPORT$tpath" "$wcpus" "$tpid" -- "${hdrs[@]}")
        fi
        # A round is noisy when other processes used more than 2% of the machine during either run.
        noisy=$(awk -v a="$(echo "$t" | cut -d' ' -f5)" -v b="$(echo "$n" | cut -d' ' -f5)" -v lim="$NOISE_LIMIT" \
            'BEGIN { print (a > lim || b > lim) ? "*" : "" }')
        # shellcheck disable=SC2086
        printf "$ROWFMT" "$r$noisy" tribune $t
        # shellcheck disable=SC2086
        printf "$ROWFMT" "$r$noisy" nginx $n
        echo "${t%% *}" >> "$TMP/t-all.txt"
        echo "${n%% *}" >> "$TMP/n-all.txt"
        if [[ -z "$noisy" ]]; then
            clean=$((clean + 1))
            echo "${t%% *}" >> "$TMP/t.txt"
            echo "${n%% *}" >> "$TMP/n.txt"
            awk -v a="${t%% *}" -v b="${n%% *}" 'BEGIN { printf "%.3f\n", a / b }' >> "$TMP/ratio.txt"
        fi
    done
    if (( clean == 0 )); then
        echo "every round was noisy (other processes busy): the medians below use all rounds and are NOT reliable"
        cp "$TMP/t-all.txt" "$TMP/t.txt"; cp "$TMP/n-all.txt" "$TMP/n.txt"
        paste -d' ' "$TMP/t.txt" "$TMP/n.txt" | awk '{ printf "%.3f\n", $1 / $2 }' > "$TMP/ratio.txt"
    fi
    stop_pid "$NGINX_PID"
    stop_pid "$tpid"
    local tm nm ratio verdict
    tm=$(median < "$TMP/t.txt")
    nm=$(median < "$TMP/n.txt")
    ratio=$(awk -v a="$tm" -v b="$nm" 'BEGIN { printf "%.3f", a / b }')
    verdict=$(awk -v x="$ratio" -v g="$GOAL" 'BEGIN { print (x >= g) ? "PASS" : "FAIL" }')
    echo "median of $( (( clean > 0 )) && echo "$clean clean" || echo "$ROUNDS noisy") rounds, req/s: tribune $tm, nginx $nm; ratio tribune/nginx $ratio (per round: $(paste -sd' ' "$TMP/ratio.txt")); goal >= $GOAL: $verdict"
    echo
    if [[ -z "$HEADLINE" ]]; then
        HEADLINE="$layout/$encoding: tribune $tm req/s, nginx $nm req/s, ratio $ratio -> $verdict"
        [[ "$verdict" == PASS ]] || STATUS=1
    fi
}

for layout in $LAYOUTS; do
    run_layout "$layout" identity
done
if [[ "$BR" == 1 ]]; then
    for layout in $LAYOUTS; do
        run_layout "$layout" br
    done
fi
echo "headline ($(echo "$LAYOUTS" | awk '{print $1}') layout, identity encoding): $HEADLINE"
echo "columns: srv-cpu-s = CPU seconds the server used in the timed run (all its threads); wrk-cpu-s = the"
echo "         load tool's; irq-s = kernel interrupt/softirq time (loopback TCP work, machine-wide);"
echo "         other-s = CPU other processes used (noise: a round where it passes $NOISE_LIMIT s is marked"
echo "         '*', noisy, and left out of the medians); steal-s = time the hypervisor took. A server that used"
echo "         much less than DURATION x its cores was not the bottleneck."
exit "$STATUS"
