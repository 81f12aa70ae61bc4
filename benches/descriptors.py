#!/usr/bin/env python3
"""Writes every Envoy proto of xds-protos (and what they import) as one FileDescriptorSet.

Usage: descriptors.py OUT      (run with .venv/oracle/bin/python)

The dump generator (gen-dump) encodes its resources to binary protobuf and to proto3 JSON with
lowerCamelCase names from these descriptors, the same official protos tests/oracle/to_binary.py
uses, so the binary and camelCase forms of a generated dump are what Envoy and istioctl would
print, not Heft's trimmed protos.
"""

import importlib
import pkgutil
import sys

from google.protobuf import descriptor_pb2


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = {}
    for top in ("envoy", "udpa", "xds", "validate"):
        try:
            pkg = importlib.import_module(top)
        except ImportError:
            continue
        for mod in pkgutil.walk_packages(pkg.__path__, top + "."):
            if not mod.name.endswith("_pb2"):
                continue
            try:
                m = importlib.import_module(mod.name)
            except Exception:  # noqa: BLE001 - a module that fails to import is not needed
                continue
            stack = [m.DESCRIPTOR]
            while stack:
                fd = stack.pop()
                if fd.name in files:
                    continue
                proto = descriptor_pb2.FileDescriptorProto()
                fd.CopyToProto(proto)
                files[fd.name] = proto
                stack.extend(fd.dependencies)
    # Dependencies first, as a FileDescriptorSet expects.
    out = descriptor_pb2.FileDescriptorSet()
    done = set()

    def add(name):
        if name in done:
            return
        done.add(name)
        for dep in files[name].dependency:
            add(dep)
        out.file.append(files[name])

    # prost-reflect reads proto2 and proto3 only; files written in editions (protobuf's own
    # language feature files) are not needed by any Envoy message.
    editions = {n for n, f in files.items() if f.syntax == "editions"}
    needed = [n for n, f in files.items() if n not in editions and not set(f.dependency) & editions]
    for name in sorted(needed):
        add(name)
    with open(sys.argv[1], "wb") as f:
        f.write(out.SerializeToString())
    print(f"descriptors: {len(out.file)} files -> {sys.argv[1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
