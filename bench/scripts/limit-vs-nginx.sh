#!/usr/bin/env bash
# Rejection throughput: the gateway answering 429 to a client over its
# per-client limit, versus nginx `limit_req` rejecting with 429, measured with
# wrk against 127.0.0.1 in the same run. Goal: anteroom >= 0.8 x nginx.
#
# Both stand in front of the same upstream (`anteroom-bench origin`); both are
# configured so that after the first request or two from 127.0.0.1 every
# request is rejected, so what wrk measures is the cost of a rejection:
#   nginx:    limit_req_zone $binary_remote_addr rate=1r/m, burst=1 nodelay,
#             limit_req_status 429, worker_processes auto, access_log off
#   anteroom: [limits] per_ip_per_second = 1, per_ip_burst = 1, memory
#             backend, no rooms, RUST_LOG=warn
# Runs are interleaved (nginx, anteroom, nginx, anteroom, ...) because the
# machine is shared and noisy; each run is preceded by a short warm-up.
#
# Usage: bench/scripts/limit-vs-nginx.sh
# Knobs (environment): ROUNDS (2), DURATION (10s), WARMUP (2s), THREADS (2),
# CONNECTIONS (64), SKIP_BUILD=1 (use the binaries already built),
# NGINX_REUSEPORT=0 (one shared listening socket instead of one per worker).
# Installs nginx and wrk with apt-get when they are missing (needs root).
# Prints a Markdown table; exits non-zero if a check fails (a target not
# answering 429, or wrk seeing anything but rejections).

set -euo pipefail

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}

say() { printf '%s\n' "$*" >&2; }
die() {
    say "limit-vs-nginx: $*"
    exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# --- 1. Tools -----------------------------------------------------------------

apt_updated=0
apt_install() {
    [[ $(id -u) -eq 0 ]] || die "$1 is missing and installing it needs root"
    if [[ $apt_updated -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
    # Keep the package's post-install from starting a system nginx on port
    # 80: we run our own, in the foreground, on a private config. The policy
    # file is ours only if it was not there before.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        own_policy=1
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >&2 ||
        status=$?
    if [[ $own_policy -eq 1 ]]; then rm -f "$policy"; fi
    [[ $status -eq 0 ]] || die "apt-get install $1 failed"
}

export PATH="$PATH:/usr/sbin:/sbin"
command -v wrk >/dev/null || apt_install wrk
command -v nginx >/dev/null || apt_install nginx
command -v curl >/dev/null || apt_install curl
NGINX=$(command -v nginx)

# --- 2. Build ---------------------------------------------------------------------

cd "$repo"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    say "building release binaries..."
    cargo build --release -p anteroom-gateway -p anteroom-bench >&2
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
    grep -o '"target_directory":"[^"]*"' | head -n1 | cut -d'"' -f4)
[[ -n $target_dir ]] || die "cannot find the target directory (cargo metadata)"
GATEWAY=$target_dir/release/anteroom-gateway
BENCH=$target_dir/release/anteroom-bench
[[ -x $GATEWAY && -x $BENCH ]] || die "release binaries missing under $target_dir/release"

# --- Processes we start, and only those, are stopped on exit -------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/limit-vs-nginx.XXXXXX")
# nginx's workers run as an unprivileged user when started as root.
chmod 755 "$work"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        # Give each a few seconds to stop gracefully, then insist.
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free ports: bind port 0 and let the kernel choose, all at once so that they
# differ. (Another process could take one before we bind it; unlikely.)
free_ports() {
    python3 - "$1" <<'EOF' 2>/dev/null && return
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
    # No python3: random ports in the ephemeral range that nobody listens on.
    local found=() port
    while [[ ${#found[@]} -lt $1 ]]; do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
            [[ " ${found[*]} " != *" $port "* ]]; then
            found+=("$port")
        fi
    done
    echo "${found[*]}"
}

# Waits until something accepts TCP connections on the port (no HTTP request:
# a request would spend the client's allowance).
wait_listening() {
    local port=$1 name=$2 pid=$3
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || die "$name exited early; its log: $(cat "$work/$name.log" 2>/dev/null)"
        sleep 0.1
    done
    die "$name is not listening on 127.0.0.1:$port after 10 s; its log: $(cat "$work/$name.log" 2>/dev/null)"
}

read -r origin_port nginx_port gateway_port admin_port <<<"$(free_ports 4)"

# --- 3. The upstream ----------------------------------------------------------------

RUST_LOG=warn "$BENCH" origin --listen "127.0.0.1:$origin_port" >"$work/origin.log" 2>&1 &
pids+=($!)
wait_listening "$origin_port" origin "$!"

# --- 4. nginx --------------------------------------------------------------------------

mkdir -p "$work/nginx"
reuseport=" reuseport"
[[ ${NGINX_REUSEPORT:-1} == 1 ]] || reuseport=""
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;

    limit_req_zone \$binary_remote_addr zone=per_ip:10m rate=1r/m;

    upstream origin {
        server 127.0.0.1:$origin_port;
        keepalive 64;
    }

    server {
        # reuseport: one listening socket per worker, so the kernel spreads
        # wrk's connections over both workers (fair to nginx).
        listen 127.0.0.1:$nginx_port$reuseport;

        location / {
            limit_req zone=per_ip burst=1 nodelay;
            limit_req_status 429;
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"$NGINX" -t -q -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx.conf" 2>"$work/nginx-t.log" ||
    die "nginx rejects the generated config: $(cat "$work/nginx-t.log")"
"$NGINX" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx.conf" \
    -g 'daemon off;' >"$work/nginx.log" 2>&1 &
pids+=($!)
wait_listening "$nginx_port" nginx "$!"
sleep 0.5
nginx_workers=$(pgrep -c -P "${pids[-1]}" || true)

# --- 5. The gateway -----------------------------------------------------------------

cat >"$work/anteroom.toml" <<EOF
listen = "127.0.0.1:$gateway_port"
admin_listen = "127.0.0.1:$admin_port"
upstream = "http://127.0.0.1:$origin_port"

[store]
backend = "memory"

[limits]
per_ip_per_second = 1
per_ip_burst = 1
EOF
"$GATEWAY" --config "$work/anteroom.toml" --check >"$work/check.log" 2>&1 ||
    die "the gateway rejects the generated config: $(cat "$work/check.log")"
RUST_LOG=warn "$GATEWAY" --config "$work/anteroom.toml" >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_listening "$gateway_port" gateway "$!"

nginx_url="http://127.0.0.1:$nginx_port/"
gateway_url="http://127.0.0.1:$gateway_port/"

# --- 6. Measure --------------------------------------------------------------------------

# Three requests in a row: the first (nginx: first two) pass to the origin,
# the last must be a 429.
codes() {
    curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} ' "$1" "$1" "$1" | sed 's/ $//'
}
nginx_codes=$(codes "$nginx_url")
gateway_codes=$(codes "$gateway_url")
say "nginx answers three requests in a row with: $nginx_codes"
say "anteroom answers three requests in a row with: $gateway_codes"
[[ $nginx_codes == *429 ]] || die "nginx does not answer 429 to a client over its limit ($nginx_codes)"
[[ $gateway_codes == *429 ]] || die "anteroom does not answer 429 to a client over its limit ($gateway_codes)"
# One passed request each proves the upstream path works.
[[ $nginx_codes == 200* ]] || die "nginx did not proxy the first request ($nginx_codes)"
[[ $gateway_codes == 200* ]] || die "anteroom did not proxy the first request ($gateway_codes)"
retry_after=$(curl -s -o /dev/null -D - "$gateway_url" | tr -d '\r' | awk -F': ' 'tolower($1)=="retry-after"{print $2}')
[[ -n $retry_after ]] || die "anteroom's 429 has no Retry-After"

wrk_cmd=(wrk "-t$THREADS" "-c$CONNECTIONS" "-d$DURATION")

# Runs wrk against a URL (warm-up, then the measured run); sets rps, total,
# non2xx and errors (socket errors) from its output.
measure() {
    local name=$1 url=$2 out=$work/wrk-$1-$3.txt
    wrk "-t$THREADS" "-c$CONNECTIONS" "-d$WARMUP" "$url" >/dev/null
    "${wrk_cmd[@]}" "$url" >"$out"
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    total=$(awk '/ requests in / {print $1}' "$out")
    non2xx=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' "$out")
    non2xx=${non2xx:-0}
    errors=$(awk '/Socket errors:/ {n=0; for (i=3;i<=NF;i++) {gsub(",","",$i); if ($i ~ /^[0-9]+$/) n+=$i}; print n}' "$out")
    errors=${errors:-0}
    [[ -n $rps && -n $total ]] || die "cannot read wrk's output for $name: $(cat "$out")"
    check_rejections "$name"
}

# At most this share of wrk's responses may be anything but a rejection: the
# gateway lets one request a second through, nginx one a minute.
check_rejections() {
    local name=$1
    awk -v t="$total" -v n="$non2xx" 'BEGIN {exit !(t > 0 && n >= 0.999 * t)}' ||
        die "$name: only $non2xx of $total responses were non-2xx; not measuring rejections"
    [[ $errors -eq 0 ]] || say "warning: $name: wrk reported $errors socket errors"
}

rows=()
ratios=()
for round in $(seq "$ROUNDS"); do
    say "round $round/$ROUNDS: nginx..."
    measure nginx "$nginx_url" "$round"
    n_rps=$rps n_total=$total n_non2xx=$non2xx
    say "round $round/$ROUNDS: anteroom..."
    measure anteroom "$gateway_url" "$round"
    g_rps=$rps g_total=$total g_non2xx=$non2xx
    ratio=$(awk -v g="$g_rps" -v n="$n_rps" 'BEGIN {printf "%.3f", g / n}')
    ratios+=("$ratio")
    rows+=("| $round | $(printf '%.0f' "$n_rps") | $(printf '%.0f' "$g_rps") | $ratio | $n_non2xx/$n_total | $g_non2xx/$g_total |")
done
mean=$(printf '%s\n' "${ratios[@]}" | awk '{s += $1} END {printf "%.3f", s / NR}')

# --- 7. Report ------------------------------------------------------------------------------

nginx_version=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
cat <<EOF

### 429 throughput: anteroom vs nginx limit_req

\`${wrk_cmd[*]} http://127.0.0.1:PORT/\` (after a ${WARMUP} warm-up), interleaved
nginx then anteroom, on $(nproc) CPUs. nginx ${nginx_version}: worker_processes auto
(${nginx_workers} workers), listen${reuseport:- without reuseport}, limit_req rate=1r/m burst=1 nodelay, access_log off.
anteroom: per_ip_per_second = 1, per_ip_burst = 1, memory backend, no rooms,
RUST_LOG=warn. Three requests in a row: nginx \`$nginx_codes\`, anteroom
\`$gateway_codes\` (Retry-After: $retry_after).

| run | nginx req/s | anteroom req/s | ratio | nginx non-2xx/total | anteroom non-2xx/total |
|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

Mean ratio (anteroom / nginx): **$mean** (goal: at least 0.8)
EOF
