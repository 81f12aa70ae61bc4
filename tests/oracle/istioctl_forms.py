#!/usr/bin/env python3
"""Re-encodes real Envoy captures in every form istioctl prints, with Google's protobuf library
(json_format, the official Envoy protos from xds-protos) and PyYAML, for Heft's istioctl-forms test.

Usage: istioctl_forms.py OUTDIR INPUT [INPUT ...]      (run with .venv/oracle/bin/python)
       istioctl_forms.py --camel-exceptions

INPUT is a `/config_dump` or a `/clusters?format=json` capture (plain or gzip, recognised by its
magic bytes). The document is parsed into its proto message (ignore_unknown_fields=False), then
printed again. For the i-th INPUT, writes into OUTDIR/<i>/ the files below and prints one JSON line
{"input", "dir", "files": {name: shape}} (or {"input", "error"}).

A `/config_dump` gives:
- dump.camel.json       the ConfigDump as istioctl `proxy-config all -o json` prints it: proto3 JSON,
                        lowerCamelCase names, 64-bit integers as strings, enums as names
- dump.camel.yaml       that JSON as istioctl `-o yaml` prints it: keys sorted, strings that YAML
                        would read as another type quoted, multi-line strings as literal blocks
- dump.original.yaml    the original document (original field names, Envoy's key order) in YAML
- dump.numbers.json     original field names, enums as numbers, 64-bit integers as numbers
- dump.strings.json     lowerCamelCase, every integer (32-bit too) as a string, bytes as URL-safe
                        base64 without padding, and every field printed, defaults included
- section-<k>.camel.json|yaml   configs[k] alone, unpacked (no @type), as istioctl prints
                        `proxy-config bootstrap|secret -o json|yaml`
- <kind>.camel.json|yaml        arrays of the dump's resources, as `istioctl proxy-config
                        cluster|listener|route|endpoint -o json|yaml` (kind: clusters, listeners,
                        routes, endpoints; every state, in dump order)
A `/clusters?format=json` gives statuses.camel.json|yaml (envoy.admin.v3.Clusters).

With --camel-exceptions, prints as JSON every [json_name, name] pair of the Envoy API (every field
of every message in the envoy, udpa and xds packages) whose lowerCamelCase JSON name does not turn
back into the field name by putting `_` before each capital and lowering it.
"""

import base64
import json
import os
import re
import sys

import yaml

from protos import import_all_protos, load


# ---- YAML as istioctl prints it (sigs.k8s.io/yaml over go-yaml) ----

# YAML 1.2 core schema scalars that are not strings: PyYAML resolves with YAML 1.1, so a string such
# as "1e5" or "0o17" would be printed plain and read back as a number by a YAML 1.2 reader. Strings
# matching these are quoted, as go-yaml quotes them.
CORE_12 = re.compile(
    r"""^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE
    |[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+
    |[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$""",
    re.X,
)


class IstioctlDumper(yaml.SafeDumper):
    pass


def represent_str(dumper, value):
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if value == "" or CORE_12.match(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


IstioctlDumper.add_representer(str, represent_str)


def to_yaml(obj, sort_keys):
    return yaml.dump(
        obj,
        Dumper=IstioctlDumper,
        sort_keys=sort_keys,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


# ---- proto3 JSON printers ----


def printer(**options):
    from google.protobuf import json_format

    return json_format._Printer(**options)


def strings_printer():
    """Every integer as a string, bytes URL-safe without padding: liberties a proto3 JSON reader
    must accept, which no ordinary printer uses."""
    from google.protobuf import descriptor, json_format

    ints = (
        descriptor.FieldDescriptor.CPPTYPE_INT32,
        descriptor.FieldDescriptor.CPPTYPE_UINT32,
        descriptor.FieldDescriptor.CPPTYPE_INT64,
        descriptor.FieldDescriptor.CPPTYPE_UINT64,
    )

    class Strings(json_format._Printer):
        def _FieldToJsonObject(self, field, value):
            if field.cpp_type in ints:
                return str(value)
            if field.type == descriptor.FieldDescriptor.TYPE_BYTES:
                return base64.urlsafe_b64encode(value).decode().rstrip("=")
            return super()._FieldToJsonObject(field, value)

    return Strings(always_print_fields_with_no_presence=True)


def to_json(p, message):
    return json.dumps(p._MessageToJsonObject(message), indent=2, ensure_ascii=False)


# ---- shapes ----

KINDS = {
    "clusters": ("cluster",),
    "listeners": ("listener",),
    "routes": ("route_config",),
    "endpoints": ("endpoint_config",),
}


def resources_of(dump_msg):
    """The dump's resources by kind as unpacked messages, every state, in dump order."""
    from google.protobuf import symbol_database

    def section_of(any_msg):
        m = symbol_database.Default().GetSymbol(any_msg.type_url.split("/")[-1])()
        any_msg.Unpack(m)
        return m

    out = {k: [] for k in KINDS}

    unpack = section_of

    for section in dump_msg.configs:
        name = section.type_url.split("/")[-1]
        if name == "envoy.admin.v3.ClustersConfigDump":
            s = section_of(section)
            for c in s.static_clusters:
                out["clusters"].append(unpack(c.cluster))
            for c in list(s.dynamic_active_clusters) + list(s.dynamic_warming_clusters):
                if c.HasField("cluster"):
                    out["clusters"].append(unpack(c.cluster))
        elif name == "envoy.admin.v3.ListenersConfigDump":
            s = section_of(section)
            for l in s.static_listeners:
                out["listeners"].append(unpack(l.listener))
            for l in s.dynamic_listeners:
                for state in ("active_state", "warming_state", "draining_state"):
                    if l.HasField(state) and getattr(l, state).HasField("listener"):
                        out["listeners"].append(unpack(getattr(l, state).listener))
        elif name == "envoy.admin.v3.RoutesConfigDump":
            s = section_of(section)
            for r in list(s.static_route_configs) + list(s.dynamic_route_configs):
                out["routes"].append(unpack(r.route_config))
        elif name == "envoy.admin.v3.EndpointsConfigDump":
            s = section_of(section)
            for e in list(s.static_endpoint_configs) + list(s.dynamic_endpoint_configs):
                out["endpoints"].append(unpack(e.endpoint_config))
    return out


def convert_dump(original, outdir):
    from google.protobuf import json_format, symbol_database
    from envoy.admin.v3 import config_dump_pb2

    msg = json_format.ParseDict(original, config_dump_pb2.ConfigDump(), ignore_unknown_fields=False)
    files = {}

    def write(name, text, shape):
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
        files[name] = shape

    camel = printer()
    camel_json = to_json(camel, msg)
    write("dump.camel.json", camel_json, "dump")
    write("dump.camel.yaml", to_yaml(json.loads(camel_json), True), "dump")
    write("dump.original.yaml", to_yaml(original, False), "dump")
    numbers = printer(
        preserving_proto_field_name=True, use_integers_for_enums=True, unquote_int64_if_possible=True
    )
    write("dump.numbers.json", to_json(numbers, msg), "dump")
    write("dump.strings.json", to_json(strings_printer(), msg), "dump")

    for k, section in enumerate(msg.configs):
        cls = symbol_database.Default().GetSymbol(section.type_url.split("/")[-1])
        inner = cls()
        section.Unpack(inner)
        text = to_json(camel, inner)
        write(f"section-{k}.camel.json", text, f"section {k}")
        write(f"section-{k}.camel.yaml", to_yaml(json.loads(text), True), f"section {k}")

    for kind, resources in resources_of(msg).items():
        text = json.dumps([camel._MessageToJsonObject(r) for r in resources], indent=2)
        write(f"{kind}.camel.json", text, kind)
        write(f"{kind}.camel.yaml", to_yaml(json.loads(text), True), kind)
    return files


def convert_statuses(original, outdir):
    from google.protobuf import json_format
    from envoy.admin.v3 import clusters_pb2

    msg = json_format.ParseDict(original, clusters_pb2.Clusters(), ignore_unknown_fields=False)
    text = to_json(printer(), msg)
    files = {"statuses.camel.json": "statuses", "statuses.camel.yaml": "statuses"}
    with open(os.path.join(outdir, "statuses.camel.json"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(outdir, "statuses.camel.yaml"), "w", encoding="utf-8") as f:
        f.write(to_yaml(json.loads(text), True))
    return files


def camel_exceptions():
    def snake(name):
        return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)

    seen = set()

    def walk(message):
        for f in message.fields:
            if snake(f.json_name) != f.name and f.json_name != f.name:
                seen.add((f.json_name, f.name))
        for nested in message.nested_types:
            walk(nested)

    for module in list(sys.modules.values()):
        file = getattr(module, "DESCRIPTOR", None)
        if file is not None and hasattr(file, "message_types_by_name"):
            for message in file.message_types_by_name.values():
                walk(message)
    return sorted(seen)


def main():
    if sys.argv[1:] == ["--camel-exceptions"]:
        import_all_protos()
        print(json.dumps(camel_exceptions()))
        return
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    import_all_protos()
    outdir = sys.argv[1]
    for i, path in enumerate(sys.argv[2:]):
        target = os.path.join(outdir, str(i))
        try:
            os.makedirs(target, exist_ok=True)
            original = load(path)
            if "configs" in original:
                files = convert_dump(original, target)
            elif "cluster_statuses" in original:
                files = convert_statuses(original, target)
            else:
                raise ValueError("neither a /config_dump nor a /clusters document")
            print(json.dumps({"input": path, "dir": target, "files": files}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported per input, the test decides
            print(json.dumps({"input": path, "error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
