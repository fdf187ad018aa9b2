#!/usr/bin/env bash
# Instructions per request on two hot paths, counted by callgrind: an
# admitted visitor proxied upstream, and a waiting visitor's status poll.
# Instruction counts repeat whatever else the machine is doing, so two
# gateway binaries (before and after a change) compare exactly where wrk's
# requests per second drift by 10 %.
#
# For each binary and path it runs the gateway under callgrind twice, with
# FEW and MANY requests on one keep-alive connection, and reports
# (cost(MANY) - cost(FEW)) / (MANY - FEW) for the connection tasks
# (`server::serve`'s per-connection future: parsing, routing, the door, the
# answer, the proxy's request side), so start-up and the rooms' background
# steps cancel out.
#
# Usage: bench/scripts/callgrind-paths.sh [GATEWAY_BIN ...]
#        (default: this tree's release build)
# Knobs: FEW (500), MANY (2500), SKIP_BUILD=1. Needs valgrind and python3.

set -euo pipefail
FEW=${FEW:-500}
MANY=${MANY:-2500}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
release_build anteroom-gateway anteroom-bench
binaries=("$@")
[[ ${#binaries[@]} -gt 0 ]] || binaries=("$target/release/anteroom-gateway")

origin_port=$(free_port)
"$target/release/anteroom-bench" origin --listen "127.0.0.1:$origin_port" >"$work/origin.log" 2>&1 &
pids+=($!)

# One visitor's requests on one connection: `proxy` (the first request
# admits it, the rest go upstream with its pass) or `status` (a first
# visitor fills the room's one place, a second waits and polls).
cat >"$work/drive.py" <<'EOF'
import http.client, sys, time
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for _ in range(600):
    try:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        probe.request("GET", "/_anteroom/ready"); probe.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.request("GET", "/echo/x"); r = c.getresponse(); r.read()
if path == "status":
    c.request("GET", "/echo/x"); r = c.getresponse(); r.read()
cookie = "; ".join(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")
time.sleep(1)
target, expect = ("/_anteroom/status", b'"waiting"') if path == "status" else ("/echo/x", b"")
good = 0
for _ in range(n):
    c.request("GET", target, headers={"Cookie": cookie}); r = c.getresponse(); body = r.read()
    good += r.status == 200 and expect in body
if good != n:
    sys.exit(f"only {good} of {n} requests were answered as expected")
EOF

connection_cost() { # BIN CAPACITY PATH N
    local port admin out pid
    port=$(free_port)
    admin=$(free_port)
    out="$work/callgrind.$RANDOM"
    cat >"$work/gateway.toml" <<EOF
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"
upstream = "http://127.0.0.1:$origin_port"
[store]
backend = "memory"
[secrets]
cookie_keys = ["a-callgrind-cookie-key-of-32-characters-or-more"]
[limits]
per_ip_per_second = 1000000
per_ip_burst = 1000000
tickets_per_ip_per_minute = 1000000
[[room]]
name = "vaccini"
paths = ["/"]
capacity = $2
admit_per_minute = 60000
EOF
    valgrind --tool=callgrind --callgrind-out-file="$out" "$1" --config "$work/gateway.toml" >"$out.log" 2>&1 &
    pid=$!
    python3 "$work/drive.py" "$port" "$3" "$4"
    kill -INT "$pid"
    wait "$pid" || true
    callgrind_annotate --inclusive=yes "$out" |
        grep -E 'server::serve::\{\{closure\}\}::\{\{closure\}\} ' | head -1 | awk '{gsub(",", "", $1); print $1}'
}

printf '| binary | path | instructions per request |\n|---|---|---:|\n'
for binary in "${binaries[@]}"; do
    for path in proxy status; do
        capacity=1000
        [[ $path == status ]] && capacity=1
        few=$(connection_cost "$binary" "$capacity" "$path" "$FEW")
        many=$(connection_cost "$binary" "$capacity" "$path" "$MANY")
        printf '| %s | %s | %d |\n' "$binary" "$path" $(((many - few) / (MANY - FEW)))
    done
done
