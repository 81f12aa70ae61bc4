"""What the protobuf oracles share (run with .venv/oracle/bin/python): the official Envoy protos
loaded, and a capture read."""

import gzip
import importlib
import json
import pkgutil


def import_all_protos():
    """Imports every *_pb2 module of the envoy, udpa and xds packages so every Any resolves."""
    for top in ("envoy", "udpa", "xds"):
        pkg = importlib.import_module(top)
        for mod in pkgutil.walk_packages(pkg.__path__, top + "."):
            if mod.name.endswith("_pb2"):
                importlib.import_module(mod.name)


def load(path):
    """A JSON capture, plain or gzip (recognised by its magic bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw)
