#!/usr/bin/env bash
# Booking intake and drain, measured on 127.0.0.1:
#   1. intake throughput: 202s per second from one gateway on Redis, wrk
#      posting JSON bookings (each without Idempotency-Key, so each is a new
#      stored request) with an admitted visitor's pass cookie; once with
#      Redis `appendfsync everysec` and once with `appendfsync always`;
#   2. drain pace accuracy: two `anteroom-worker` processes sharing one
#      buffer at DRAIN_RATE per second; the finished count is sampled from
#      the admin API every 100 ms and the pace is measured away from the
#      start and the tail.
#
# Usage: bench/scripts/intake.sh
# Knobs (environment): DURATION (10s), THREADS (1), CONNECTIONS (50),
# DRAIN_RATE (200), DRAIN_COUNT (3000), SKIP_BUILD=1.
# Installs wrk with apt-get when it is missing (needs root). Uses its own
# redis-server on a free port and stops everything it started.

set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-50}
DRAIN_RATE=${DRAIN_RATE:-200}
DRAIN_COUNT=${DRAIN_COUNT:-3000}

say() { printf '%s\n' "$*" >&2; }
die() {
    say "intake: $*"
    exit 1
}

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! command -v wrk >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "wrk is missing and installing it needs root"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >&2
fi
command -v redis-server >/dev/null || die "redis-server is missing (scripts/test installs it)"

release_build anteroom-gateway anteroom-worker anteroom-bench
bin="$target/release"

redis_port=$(free_port)
origin_port=$(free_port)
listen_port=$(free_port)
admin_port=$(free_port)

"$bin/anteroom-bench" origin --listen "127.0.0.1:$origin_port" >"$work/origin.log" 2>&1 &
pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync everysec --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)

write_config() { # $1 = worker admin port (the gateway's own file uses any)
    cat <<EOF
listen = "127.0.0.1:$listen_port"
admin_listen = "127.0.0.1:$admin_port"
upstream = "http://127.0.0.1:$origin_port"

[store]
backend = "redis"
redis_url = "redis://127.0.0.1:$redis_port/0"

[secrets]
cookie_keys = ["intake-bench-key-0123456789abcdefghijklmnop"]

[limits]
per_ip_per_second = 1000000
per_ip_burst = 1000000
tickets_per_ip_per_minute = 1000000

[worker]
admin_listen = "127.0.0.1:$1"

[[room]]
name = "vaccini"
paths = ["/api/"]
capacity = 100000
admit_per_minute = 1000000

[[buffer]]
name = "bookings"
room = "vaccini"
path = "/api/bookings"
drain_per_second = $DRAIN_RATE
max_in_flight = 16
max_depth = 100000000
EOF
}
write_config "$(free_port)" >"$work/gateway.toml"
RUST_LOG=warn "$bin/anteroom-gateway" --config "$work/gateway.toml" >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null || die "the gateway is not ready"

# An admitted visitor's pass.
cookie=$(curl -fsS -o /dev/null -D - "http://127.0.0.1:$listen_port/api/slots" |
    sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\);.*/\1/p' | paste -sd ';' -)
[[ -n $cookie ]] || die "no pass cookie"

# Every request is a new booking: its own Idempotency-Key (without one,
# the same body from the same pass would be the same booking).
write_post_lua() { # $1 = key prefix
    cat <<EOF
local body = '{"name":"Ada","slot":"2021-03-01T09:00"}'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local count = 0
request = function()
  count = count + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Cookie"] = "$cookie",
    ["Idempotency-Key"] = "$1-" .. tostring(tid) .. "-" .. count,
  }, body)
end
EOF
}

redis_cli() { redis-cli -p "$redis_port" "$@"; }

intake() { # $1 = appendfsync setting
    redis_cli config set appendfsync "$1" >/dev/null
    local out
    write_post_lua "$1-$RANDOM" >"$work/post-$1.lua"
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/post-$1.lua" \
        "http://127.0.0.1:$listen_port/api/bookings")
    say "$out"
    if grep -q "Non-2xx" <<<"$out"; then die "wrk saw answers other than 202"; fi
    local rate p50 p99
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    printf '| appendfsync %s | %s | %s | %s |\n' "$1" "$rate" "$p50" "$p99"
}

echo "## Intake: 202s per second, one gateway on Redis (wrk -t$THREADS -c$CONNECTIONS -d$DURATION)"
echo
echo "| Redis | 202/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
intake everysec
intake always
stored=$(curl -fsS "http://127.0.0.1:$admin_port/admin/buffers/bookings" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accepted"])')
echo
echo "Stored requests (distinct bookings accepted): $stored"

# --- drain pace -------------------------------------------------------------
# Start from a fresh buffer of DRAIN_COUNT requests.
redis_cli flushall >/dev/null
redis_cli config set appendfsync everysec >/dev/null
posted=0
while ((posted < DRAIN_COUNT)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
        -H "idempotency-key: drain-$posted" -H "cookie: $cookie" -d '{"name":"Ada","slot":"2021-03-01T09:00"}' \
        "http://127.0.0.1:$listen_port/api/bookings")
    if [[ $code == 202 ]]; then
        posted=$((posted + 1))
    elif [[ $code == 200 || $code == 503 ]]; then
        # The store was wiped: the pass rejoins on the next page.
        curl -fsS -o /dev/null -H "cookie: $cookie" "http://127.0.0.1:$listen_port/api/slots" || true
    else
        die "posting a booking answered $code"
    fi
done 2>/dev/null
for _ in 1 2; do
    worker_port=$(free_port)
    write_config "$worker_port" >"$work/worker-$worker_port.toml"
    RUST_LOG=warn "$bin/anteroom-worker" --config "$work/worker-$worker_port.toml" \
        >"$work/worker-$worker_port.log" 2>&1 &
    pids+=($!)
done
python3 - "$admin_port" "$DRAIN_RATE" "$DRAIN_COUNT" <<'EOF'
import json, sys, time, urllib.request
port, rate, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
samples = []
deadline = time.time() + 10 * count / rate + 60
while time.time() < deadline:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/buffers/bookings") as answer:
        done = json.load(answer)["done"]
    samples.append((time.monotonic(), done))
    if done >= count:
        break
    time.sleep(0.1)
low, high = count // 10, count * 9 // 10
first = next(s for s in samples if s[1] >= low)
last = next(s for s in samples if s[1] >= high)
pace = (last[1] - first[1]) / (last[0] - first[0])
print()
print(f"## Drain pace: two workers, drain_per_second = {rate}, {count} requests")
print()
print(f"Measured {pace:.2f}/s between {first[1]} and {last[1]} finished: "
      f"{pace / rate:.4f} x drain_per_second.")
EOF
