#!/usr/bin/env bash
# Regenerates the real-Envoy captures: makes the virtualenvs (scripts/setup.sh), records the Envoy
# version, then captures every scenario into OUT_DIR/<scenario>/ (default OUT_DIR: testdata/real) and
# checks each capture still shows the features its scenario exists for (testdata/capture/check.py).
# Usage: scripts/capture-all.sh [OUT_DIR]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/testdata/real}"
SCENARIOS=(sidecar gateway registry-only)  # the keys of SCENARIOS in testdata/capture/capture.py

"$ROOT/scripts/setup.sh" >/dev/null
envoy_bin="$("$ROOT/scripts/envoy-path")"
mkdir -p "$OUT"
# argv[0] "envoy" keeps this machine's path out of the recorded line.
(exec -a envoy "$envoy_bin" --version) >"$OUT/ENVOY_VERSION"

for scenario in "${SCENARIOS[@]}"; do
    start=$SECONDS
    "$ROOT/.venv/oracle/bin/python" "$ROOT/testdata/capture/capture.py" \
        --envoy "$envoy_bin" --scenario "$scenario" --out "$OUT/$scenario"
    "$ROOT/.venv/oracle/bin/python" "$ROOT/testdata/capture/check.py" --scenario "$scenario" "$OUT/$scenario" \
        | grep -v '^ok ' >&2
    echo "capture-all: $scenario captured in $((SECONDS - start)) s" >&2
done
