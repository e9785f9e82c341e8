#!/usr/bin/env bash
# Soak test of both receivers: valid (unique conversation ids), forged and
# signed-but-malformed webhooks over 64 concurrent connections, bounded in count
# and time. Checks every valid one got 200 and reached the handler exactly once
# (counted at the handler, from its log), every forged one 401, every malformed
# one 400, no 5xx, no connection error, and flat RSS after the warm-up.
#
# Usage: bench/soak.sh        (REQUESTS=1000000 CONCURRENCY=64 MAX_SECONDS=60)
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-1000000}
CONCURRENCY=${CONCURRENCY:-64}
MAX_SECONDS=${MAX_SECONDS:-60}

cargo build --release -q -p axum-receiver -p actix-receiver -p harness --bin axum-receiver --bin actix-receiver --bin soak

status=0
for receiver in axum-receiver actix-receiver; do
  for path in /webhook /scoped/webhook; do
    echo
    echo "=== $receiver $path"
    target/release/soak --receiver "target/release/$receiver" --path "$path" \
      --requests "$REQUESTS" --concurrency "$CONCURRENCY" --max-seconds "$MAX_SECONDS" \
      || status=1
  done
done
echo
if [ "$status" -eq 0 ]; then echo "soak: every check passed"; else echo "soak: FAILED"; fi
exit "$status"
