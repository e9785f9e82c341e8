#!/usr/bin/env bash
# Prints the directory cargo builds into (CARGO_TARGET_DIR, a .cargo/config
# target-dir, or ./target), as `cargo metadata` reports it. Used by the bench
# scripts to find the binaries and criterion's results.
set -euo pipefail
cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
