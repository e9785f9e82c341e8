#!/usr/bin/env bash
# Load benchmark: what verification costs next to the HTTP stack.
#
# Measures, in one run and with the same signed sample body, connections and
# duration, four servers: the axum receiver (verifies with the extractor), a bare
# axum handler (200 on `Bytes`, no verification), the actix receiver and a bare
# actix handler; all release builds with RUST_LOG=off. Rounds alternate between
# the four; each figure is the median over the rounds. Prints requests/s, server
# CPU time per request (from /proc/<pid>/stat around each run: steadier than
# requests/s on a shared machine where wrk and the server share the cores), the
# ratios verified/bare, and each server's peak RSS (VmHWM).
#
# Usage: bench/load.sh            (ROUNDS=5 DURATION=10 CONNECTIONS=32 WARMUP=2)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2}
BASE_PORT=${BASE_PORT:-18100}  # below the ephemeral range: clients never hold it
SECRET=load-benchmark-secret
BODY_FILE=bench/sample-leads-submit.json

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk from Debian's packages" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq wrk >/dev/null
fi

echo "building release binaries" >&2
cargo build --release -q -p axum-receiver -p actix-receiver -p harness --bin axum-receiver --bin actix-receiver --bin bare-axum --bin bare-actix

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

SIGNATURE=$(python3 - "$SECRET" "$BODY_FILE" <<'PY'
import hashlib, hmac, sys
secret, path = sys.argv[1], sys.argv[2]
print(hmac.new(secret.encode(), open(path, "rb").read(), hashlib.sha1).hexdigest())
PY
)

# wrk's request: the signed sample, as Chatbase sends it.
python3 - "$BODY_FILE" "$SIGNATURE" > "$work/request.lua" <<'PY'
import json, sys
body = open(sys.argv[1], "rb").read().decode()
print('wrk.method = "POST"')
print("wrk.body = " + json.dumps(body))
print('wrk.headers["Content-Type"] = "application/json"')
print('wrk.headers["x-chatbase-signature"] = "%s"' % sys.argv[2])
PY

SERVERS=(axum-receiver bare-axum actix-receiver bare-actix)

wait_for_port() {
  local port=$1
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server on port $port did not start" >&2
  return 1
}

# utime + stime of the whole process, in clock ticks (fields 14 and 15).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

echo "server round rps requests cpu_ticks peak_rss_kib non2xx" > "$work/results"
for round in $(seq 1 "$ROUNDS"); do
  for index in "${!SERVERS[@]}"; do
    server=${SERVERS[$index]}
    port=$((BASE_PORT + index))
    PORT=$port RUST_LOG=off CHATBASE_WEBHOOK_SECRET=$SECRET \
      "target/release/$server" >"$work/$server.log" 2>&1 &
    pid=$!
    wait_for_port "$port"
    url="http://127.0.0.1:$port/webhook"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$work/request.lua" "$url" >/dev/null
    before=$(cpu_ticks "$pid")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/request.lua" "$url" >"$work/wrk.out"
    after=$(cpu_ticks "$pid")
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || true
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk.out")
    requests=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$work/wrk.out")
    errors=$(grep -c "Socket errors" "$work/wrk.out" || true)
    if [ "$errors" != "0" ]; then grep "Socket errors" "$work/wrk.out" >&2; fi
    echo "$server $round $rps $requests $((after - before)) $rss ${non2xx:-0}" >> "$work/results"
    printf 'round %d/%d  %-15s %10s req/s\n' "$round" "$ROUNDS" "$server" "$rps" >&2
  done
done

python3 - "$work/results" "$(getconf CLK_TCK)" "$ROUNDS" "$DURATION" "$CONNECTIONS" "$THREADS" <<'PY'
import statistics, sys
path, clk_tck, rounds, duration, connections, threads = sys.argv[1:]
clk_tck = int(clk_tck)
rows = [line.split() for line in open(path).read().splitlines()[1:]]
by = {}
for server, _round, rps, requests, ticks, rss, non2xx in rows:
    s = by.setdefault(server, {"rps": [], "cpu_us": [], "rss": [], "non2xx": 0})
    s["rps"].append(float(rps))
    s["cpu_us"].append(int(ticks) / clk_tck * 1e6 / int(requests))
    s["rss"].append(int(rss))
    s["non2xx"] += int(non2xx)
med = {k: {"rps": statistics.median(v["rps"]), "cpu_us": statistics.median(v["cpu_us"]),
           "rss_mib": max(v["rss"]) / 1024, "non2xx": v["non2xx"],
           "spread": (max(v["rps"]) - min(v["rps"])) / statistics.median(v["rps"]) * 100}
       for k, v in by.items()}
print()
print(f"wrk -t{threads} -c{connections} -d{duration}s, {rounds} alternating rounds, medians; signed 167-byte leads.submit")
print()
print("| server | requests/s | rps spread | CPU µs/request | peak RSS | non-2xx |")
print("|---|---:|---:|---:|---:|---:|")
for k in ["axum-receiver", "bare-axum", "actix-receiver", "bare-actix"]:
    m = med[k]
    print(f"| {k} | {m['rps']:,.0f} | ±{m['spread'] / 2:.1f}% | {m['cpu_us']:.1f} | {m['rss_mib']:.1f} MiB | {m['non2xx']} |")
print()
print("| framework | requests/s verified/bare | CPU per request verified/bare | receiver peak RSS |")
print("|---|---:|---:|---:|")
ok = True
for name, verified, bare in [("axum", "axum-receiver", "bare-axum"), ("actix-web", "actix-receiver", "bare-actix")]:
    rps_ratio = med[verified]["rps"] / med[bare]["rps"]
    cpu_ratio = med[verified]["cpu_us"] / med[bare]["cpu_us"]
    rss = med[verified]["rss_mib"]
    print(f"| {name} | {rps_ratio:.3f} | {cpu_ratio:.3f} | {rss:.1f} MiB |")
    ok &= med[verified]["non2xx"] == 0 and med[bare]["non2xx"] == 0
print()
print("targets: requests/s verified/bare >= 0.95; peak RSS < 32 MiB; every response 2xx")
if not ok:
    print("ERROR: some responses were not 2xx: the load did not measure what it should")
    sys.exit(1)
PY
