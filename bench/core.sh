#!/usr/bin/env bash
# Criterion benches of chatbase-core, then the ratios they are judged by:
#   (b)/(a)          verification from the hex header / the bare HMAC floor   (target <= 1.05)
#   (c)/((a)+(d))    verify-then-parse / (HMAC floor + serde into a plain struct)  (target <= 1.00 on the sample)
#   (f)/(c)          verify-then-parse with 10,000 chatbots' secrets in a map / one secret (target <= 1.15)
#   (g)/(c)          the same through the cached resolver, warm / one secret              (target <= 1.30)
# All figures from one run (medians of criterion's samples).
#
# Usage: bench/core.sh            (extra arguments go to criterion, e.g. a filter)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p chatbase-core --bench verify -- "$@"

target_dir=$(bench/target-dir.sh)

TARGET_DIR="$target_dir" python3 - <<'PY'
import json, os
root = os.path.join(os.environ["TARGET_DIR"], "criterion")
def median(size, name):
    path = os.path.join(root, f"verify_{size}", name, "new", "estimates.json")
    return json.load(open(path))["median"]["point_estimate"]
def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
print()
print("| body | (a) HMAC floor | (a2) pre-keyed floor | (b) verify | (c) verify + parse | (d) serde plain | (b)/(a) | (c)/((a)+(d)) | HMAC GB/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for size, label in [(167, "167 B sample"), (1024, "1 KiB"), (16384, "16 KiB"), (1048576, "1 MiB")]:
    a, a2, b, c, d = (median(size, n) for n in ["a_floor_hmac", "a2_floor_prekeyed", "b_verify", "c_verify_and_parse", "d_serde_plain"])
    print(f"| {label} | {fmt(a)} | {fmt(a2)} | {fmt(b)} | {fmt(c)} | {fmt(d)} | {b / a:.3f} | {c / (a + d):.3f} | {size / a:.2f} |")
tagged = median(167, "e_serde_tagged")
plain = median(167, "d_serde_plain")
print()
print(f"serde into an internally tagged enum, sample: {fmt(tagged)} ({tagged / plain:.2f} x the plain struct)")
single = median(167, "c_verify_and_parse")
per_chatbot = median(167, "f_per_chatbot_10k")
resolver = median(167, "g_resolver_warm")
print()
print("| verify + parse of the sample | median | / one secret |")
print("|---|---:|---:|")
print(f"| (c) one secret | {fmt(single)} | 1.000 |")
print(f"| (f) 10,000 chatbots in a `ChatbotSecrets` map | {fmt(per_chatbot)} | {per_chatbot / single:.3f} |")
print(f"| (g) the cached resolver, warm | {fmt(resolver)} | {resolver / single:.3f} |")
PY
