#!/usr/bin/env bash
# Idle event streams: how much one gateway pays to hold waiting pages on
# /_anteroom/events. Opens N streams (default "5000 15000", one after the
# other) with one waiting visitor's ticket, holds them, and reports the
# gateway's resident memory and CPU over 10 s while they are idle.
#
# Usage: bench/scripts/sse-idle.sh            (release build, 127.0.0.1)
# Knobs: COUNTS ("5000 15000"), SKIP_BUILD=1. Needs python3 and an open
# files limit above the largest count (the gateway and the client each
# hold one descriptor per stream).

set -euo pipefail
COUNTS=${COUNTS:-"5000 15000"}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
largest=$(printf '%s\n' $COUNTS | sort -n | tail -1)
ulimit -n $((largest + 1000)) 2>/dev/null || {
    echo "sse-idle: cannot raise the open files limit to $((largest + 1000)) (hard limit $(ulimit -Hn))" >&2
    exit 1
}
release_build anteroom-gateway anteroom-bench
port=$(free_port) admin=$(free_port) origin=$(free_port)
cat >"$work/gateway.toml" <<EOF
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"
upstream = "http://127.0.0.1:$origin"
[limits]
per_ip_per_second = 1000000
per_ip_burst = 1000000
tickets_per_ip_per_minute = 1000000
max_connections = $((largest + 100))
max_event_streams = $((largest + 100))
[[room]]
name = "vaccini"
paths = ["/echo/"]
capacity = 1
admit_per_minute = 60
EOF
"$target/release/anteroom-bench" origin --listen "127.0.0.1:$origin" >/dev/null 2>&1 &
pids+=($!)
RUST_LOG=warn "$target/release/anteroom-gateway" --config "$work/gateway.toml" >"$work/gateway.log" 2>&1 &
gateway=$!
pids+=($gateway)
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# The first visitor goes in; the second waits and holds a ticket.
curl -s -o /dev/null "http://127.0.0.1:$port/echo/a"
cookie=$(curl -s -o /dev/null -D - "http://127.0.0.1:$port/echo/a" |
    sed -n 's/^[Ss]et-[Cc]ookie: \(anteroom_ticket_[^;]*\);.*/\1/p')
[[ -n $cookie ]] || { echo "sse-idle: no ticket" >&2; exit 1; }
cat >"$work/hold.py" <<'EOF'
import asyncio, sys
port, count, cookie, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
request = ("GET /_anteroom/events?room=vaccini HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Cookie: %s\r\nAccept: text/event-stream\r\n\r\n" % cookie).encode()
held = []
async def one(limit):
    async with limit:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0], head[:80]
        held.append((reader, writer))
async def main():
    limit = asyncio.Semaphore(500)
    await asyncio.gather(*(one(limit) for _ in range(count)))
    print("holding", len(held), flush=True)
    await asyncio.sleep(seconds)
asyncio.run(main())
EOF
ticks=$(getconf CLK_TCK)
echo "| idle streams | gateway RSS | RSS per stream | gateway CPU (10 s, % of a core) |"
echo "|---:|---:|---:|---:|"
base=$(ps -o rss= -p "$gateway")
for count in $COUNTS; do
    python3 "$work/hold.py" "$port" "$count" "$cookie" 30 >"$work/hold.out" 2>&1 &
    holder=$!
    for _ in $(seq 120); do grep -q holding "$work/hold.out" && break; sleep 0.5; done
    grep -q holding "$work/hold.out" || { cat "$work/hold.out" >&2; exit 1; }
    before=$(awk '{print $14 + $15}' "/proc/$gateway/stat")
    sleep 10
    after=$(awk '{print $14 + $15}' "/proc/$gateway/stat")
    rss=$(ps -o rss= -p "$gateway")
    printf '| %d | %d MiB | %d KiB | %d %% |\n' "$count" $((rss / 1024)) $(((rss - base) / count)) \
        $(((after - before) * 100 / ticks / 10))
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    sleep 2
done
