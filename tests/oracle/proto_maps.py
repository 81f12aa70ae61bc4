#!/usr/bin/env python3
"""Lists the fields of Envoy's v3 configuration API whose JSON values are data rather than
messages: maps and google.protobuf.Struct / Value / ListValue fields (run with
.venv/oracle/bin/python; reads the xds-protos descriptors).

Usage: proto_maps.py

Prints a JSON object {field name: ["map" | "struct" | "message" | "scalar", ...]}: for each field
name that is a map or a Struct somewhere in the v3 configuration messages, every kind it has
across those messages (a name that is a map in one message and a message in another needs
context to print right). Heft's --istioctl JSON printer must know every name listed.
"""

import collections
import importlib
import json
import pkgutil
import sys

STRUCTS = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
PREFIXES = ("envoy.config.", "envoy.extensions.", "envoy.type.", "envoy.admin.v3.", "xds.type.",
            "xds.core.", "udpa.type.")


def main():
    for top in ("envoy", "udpa", "xds"):
        pkg = importlib.import_module(top)
        for mod in pkgutil.walk_packages(pkg.__path__, top + "."):
            if mod.name.endswith("_pb2"):
                try:
                    importlib.import_module(mod.name)
                except Exception:
                    pass
    messages = {}

    def walk(d):
        messages[d.full_name] = d
        for n in d.nested_types:
            walk(n)

    for name, mod in list(sys.modules.items()):
        if name.endswith("_pb2") and hasattr(mod, "DESCRIPTOR"):
            for d in mod.DESCRIPTOR.message_types_by_name.values():
                walk(d)
    kinds = collections.defaultdict(set)
    for full, d in messages.items():
        if d.GetOptions().map_entry or not full.startswith(PREFIXES):
            continue
        if ".v2" in full or "v2alpha" in full or "v3alpha" in full:
            continue
        for f in d.fields:
            t = f.message_type
            if t is not None and t.GetOptions().map_entry:
                kinds[f.name].add("map")
            elif t is not None and t.full_name in STRUCTS:
                kinds[f.name].add("struct")
            elif t is not None:
                kinds[f.name].add("message")
            else:
                kinds[f.name].add("scalar")
    out = {k: sorted(v) for k, v in kinds.items() if {"map", "struct"} & v}
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
