#!/usr/bin/env python3
"""Prints Envoy's whole v3 API as a binary google.protobuf.FileDescriptorSet, from xds-protos
(the official protos compiled for Python): every file of the envoy, udpa and xds packages and
everything they import, each after its imports, in name order otherwise.

`heft … --raw` on binary protobuf input decodes each resource with these descriptors to print it
as JSON. Regenerate the shipped copy after changing the xds-protos pin in scripts/setup.sh:

    .venv/oracle/bin/python scripts/envoy_descriptors.py | zstd -19 -q > crates/heft-cli/data/envoy-api.binpb.zst

crates/heft-cli/tests/views_forms.rs checks that the shipped copy is what this prints.
"""

import importlib
import os
import pkgutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "oracle"))

from google.protobuf import descriptor_pb2  # noqa: E402


def main():
    files = {}
    for top in ("envoy", "udpa", "xds"):
        pkg = importlib.import_module(top)
        for mod in sorted(pkgutil.walk_packages(pkg.__path__, top + "."), key=lambda m: m.name):
            if mod.name.endswith("_pb2"):
                fd = importlib.import_module(mod.name).DESCRIPTOR
                files[fd.name] = fd
    ordered, done = [], set()

    def add(fd):
        if fd.name in done:
            return
        done.add(fd.name)
        for dep in sorted(fd.dependencies, key=lambda d: d.name):
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        ordered.append(proto)

    for name in sorted(files):
        add(files[name])
    out = descriptor_pb2.FileDescriptorSet(file=ordered)
    sys.stdout.buffer.write(out.SerializeToString(deterministic=True))


if __name__ == "__main__":
    main()
