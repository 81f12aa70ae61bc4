#!/usr/bin/env bash
# Packs measured calibration points for committing: each config dump recompressed with zstd -19
# (about half the size of calibrate.py's gzip; Heft reads both), and the stats kept only where the
# point sent traffic (the fit reads them only there). Usage: scripts/pack-calibration.sh DIR...
set -euo pipefail
command -v zstd >/dev/null || { echo "pack-calibration: needs zstd (apt-get install zstd)" >&2; exit 1; }
for dir in "$@"; do
    for point in "$dir"/*/; do
        [[ -f "$point/point.json" ]] || continue
        if [[ -f "$point/config_dump.json.gz" ]]; then
            gzip -dc "$point/config_dump.json.gz" | zstd -q -19 --long=27 -o "$point/config_dump.json.zst" -f
            rm "$point/config_dump.json.gz"
        fi
        traffic="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mesh"].get("traffic_services", 0))' "$point/point.json")"
        if [[ -f "$point/stats.json.gz" ]]; then
            if [[ "$traffic" == 0 ]]; then
                rm "$point/stats.json.gz"
            else
                gzip -dc "$point/stats.json.gz" | zstd -q -19 -o "$point/stats.json.zst" -f
                rm "$point/stats.json.gz"
            fi
        fi
    done
done
