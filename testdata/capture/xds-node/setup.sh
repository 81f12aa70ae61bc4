#!/usr/bin/env bash
# Installs the Node server's dependencies from package-lock.json. Idempotent: runs `npm ci` only when
# node_modules is missing or was installed from another lock file. Silent on success.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MARKER="$DIR/node_modules/.heft-lock.sha256"
lock_sum="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$lock_sum" ]]; then
    exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    cat "$log" >&2
    echo "xds-node/setup.sh: npm ci failed" >&2
    exit 1
fi
printf '%s' "$lock_sum" >"$MARKER"
