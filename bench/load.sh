#!/usr/bin/env bash
# Load benchmark: the reference receivers against bare servers, with and without
# metrics, and with a durable inbox. See bench/load.py for what each group
# measures; BENCHMARKS.md for the latest figures.
#
# Usage: bench/load.sh [receivers] [metrics] [inbox]     (default: all three)
#   env: ROUNDS=3 METRICS_ROUNDS=9 DURATION=10 WARMUP=2 CONNECTIONS=32 THREADS=1 BASE_PORT=18100
#        CHATBASE_TEST_POSTGRES_URL (else a throwaway cluster from
#        .ci/postgres.sh; LOAD_POSTGRES=0: none), CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

groups=("$@")
if [ "${#groups[@]}" -eq 0 ]; then groups=(receivers metrics inbox); fi
for group in "${groups[@]}"; do
  case "$group" in
    receivers | metrics | inbox) ;;
    *) echo "unknown group $group: receivers, metrics or inbox" >&2; exit 2 ;;
  esac
done

for tool in wrk python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "installing $tool from Debian's packages" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "$tool" >/dev/null
  fi
done

# Wherever cargo puts its builds: CARGO_TARGET_DIR, a .cargo/config target-dir...
target_dir=$(bench/target-dir.sh)

echo "building release binaries" >&2
if [[ " ${groups[*]} " == *" metrics "* ]]; then
  # The receivers alone, with the `metrics` feature off and on: only it differs.
  for flavour in metrics-off metrics-on; do
    features=()
    if [ "$flavour" = metrics-off ]; then features=(--no-default-features); fi
    cargo build --release -q -p axum-receiver -p actix-receiver "${features[@]}"
    mkdir -p "$target_dir/load/$flavour"
    cp "$target_dir/release/axum-receiver" "$target_dir/release/actix-receiver" "$target_dir/load/$flavour/"
  done
fi
# As `cargo build --release --workspace --bins` builds them.
cargo build --release -q --workspace --bins

LOAD_TARGET_DIR="$target_dir" exec python3 bench/load.py "${groups[@]}"
