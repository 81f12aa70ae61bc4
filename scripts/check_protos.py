#!/usr/bin/env python3
"""Check Heft's trimmed Envoy protos (proto/) against the real Envoy API.

Compiles every .proto under proto/ (found relative to this script) with
grpc_tools.protoc into a FileDescriptorSet, then compares every message, enum,
enum value, field and oneof membership with the real Envoy descriptors shipped
by the `xds-protos` package. Prints one line per mismatch and exits 1 if there
is any; otherwise prints what was checked and exits 0.

Setup (a scratch virtualenv outside the repo):

    python3 -m venv /tmp/protocheck-venv
    /tmp/protocheck-venv/bin/pip install xds-protos==1.85.0 grpcio-tools==1.85.1
    /tmp/protocheck-venv/bin/python scripts/check_protos.py
"""

import importlib
import os
import sys
import tempfile

try:
    import grpc_tools
    from grpc_tools import protoc
    from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
except ImportError as e:  # pragma: no cover
    sys.exit(f"check_protos: missing dependency ({e}); install xds-protos and grpcio-tools "
             "into a virtualenv and run this script with its python (see the docstring)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_DIR = os.path.join(ROOT, "proto")
FDP = descriptor_pb2.FieldDescriptorProto

TYPE_NAMES = {v: k[len("TYPE_"):].lower() for k, v in FDP.Type.items()}


def list_protos():
    out = []
    for dirpath, _, files in os.walk(PROTO_DIR):
        for f in files:
            if f.endswith(".proto"):
                out.append(os.path.relpath(os.path.join(dirpath, f), PROTO_DIR))
    return sorted(out)


def compile_ours(files):
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        args = ["protoc", f"-I{PROTO_DIR}", f"-I{wkt}", f"--descriptor_set_out={out}",
                "--include_imports"] + files
        rc = protoc.main(args)
        if rc != 0:
            sys.exit(f"check_protos: protoc failed (exit {rc}) compiling {PROTO_DIR}")
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as fh:
            fds.ParseFromString(fh.read())
    return fds


def load_real(files):
    """Import the xds-protos *_pb2 module for each of our files (same path)."""
    missing = []
    for f in files:
        mod = f[: -len(".proto")].replace("/", ".") + "_pb2"
        try:
            importlib.import_module(mod)
        except ImportError as e:
            missing.append(f"{f}: no matching module {mod} in xds-protos ({e})")
    return descriptor_pool.Default(), missing


def real_label(fd):
    return "repeated" if fd.is_repeated else "optional"


def is_map(fd):
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


class Checker:
    def __init__(self, pool, ours_by_name):
        self.pool = pool
        self.ours = ours_by_name  # full name -> DescriptorProto (ours), for map entries
        self.errors = []
        self.n_messages = self.n_fields = self.n_enums = self.n_values = self.n_oneofs = 0

    def err(self, msg):
        self.errors.append(msg)

    def check_file(self, fproto, real_files):
        pkg = fproto.package
        if fproto.syntax != "proto3":
            self.err(f"{fproto.name}: syntax is {fproto.syntax or 'proto2'!r}, expected proto3")
        try:
            rf = self.pool.FindFileByName(fproto.name)
            if rf.package != pkg:
                self.err(f"{fproto.name}: package {pkg} but Envoy's file has package {rf.package}")
            real_files[fproto.name] = rf
        except KeyError:
            self.err(f"{fproto.name}: no Envoy file with this path")
            rf = None
        for e in fproto.enum_type:
            self.check_enum(f"{pkg}.{e.name}", e, rf)
        for m in fproto.message_type:
            self.check_message(f"{pkg}.{m.name}", m, rf)

    def check_enum(self, full, eproto, rf):
        self.n_enums += 1
        try:
            real = self.pool.FindEnumTypeByName(full)
        except KeyError:
            self.err(f"enum {full}: not in Envoy's API")
            return
        if rf is not None and real.file.name != rf.name:
            self.err(f"enum {full}: Envoy defines it in {real.file.name}, not {rf.name}")
        for v in eproto.value:
            self.n_values += 1
            rv = real.values_by_name.get(v.name)
            if rv is None:
                self.err(f"enum value {full}.{v.name}: not in Envoy's enum")
            elif rv.number != v.number:
                self.err(f"enum value {full}.{v.name}: number {v.number}, Envoy has {rv.number}")

    def check_message(self, full, mproto, rf):
        if mproto.options.map_entry:
            return  # checked through the map field that uses it
        self.n_messages += 1
        try:
            real = self.pool.FindMessageTypeByName(full)
        except KeyError:
            self.err(f"message {full}: not in Envoy's API")
            return
        if rf is not None and real.file.name != rf.name:
            self.err(f"message {full}: Envoy defines it in {real.file.name}, not {rf.name}")
        for e in mproto.enum_type:
            self.check_enum(f"{full}.{e.name}", e, rf)
        for n in mproto.nested_type:
            self.check_message(f"{full}.{n.name}", n, rf)
        oneof_names = [o.name for o in mproto.oneof_decl]
        for o in mproto.oneof_decl:
            self.n_oneofs += 1
        for f in mproto.field:
            self.n_fields += 1
            self.check_field(full, mproto, f, real, oneof_names)

    def check_field(self, full, mproto, f, real, oneof_names):
        where = f"field {full}.{f.name}"
        rf = real.fields_by_name.get(f.name)
        if rf is None:
            self.err(f"{where}: not in Envoy's {full}")
            return
        if rf.number != f.number:
            self.err(f"{where}: number {f.number}, Envoy has {rf.number}")
        our_label = "repeated" if f.label == FDP.LABEL_REPEATED else "optional"
        if f.label == FDP.LABEL_REQUIRED:
            our_label = "required"
        if our_label != real_label(rf):
            self.err(f"{where}: label {our_label}, Envoy has {real_label(rf)}")
        if f.type != rf.type:
            self.err(f"{where}: type {TYPE_NAMES.get(f.type)}, Envoy has {TYPE_NAMES.get(rf.type)}")
        our_tn = f.type_name.lstrip(".")
        if f.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
            real_t = rf.message_type or rf.enum_type
            our_entry = self.ours.get(our_tn)
            if is_map(rf) or (our_entry is not None and our_entry.options.map_entry):
                self.check_map(where, our_entry, rf)
            elif real_t is None or our_tn != real_t.full_name:
                self.err(f"{where}: type {our_tn}, Envoy has "
                         f"{real_t.full_name if real_t else TYPE_NAMES.get(rf.type)}")
        # oneof membership (proto3 `optional` creates a synthetic oneof; treat it as none)
        our_oneof = None
        if f.HasField("oneof_index") and not f.proto3_optional:
            our_oneof = oneof_names[f.oneof_index]
        real_oneof = rf.containing_oneof.name if rf.containing_oneof is not None else None
        if real_oneof is not None and real_oneof == "_" + rf.name and len(rf.containing_oneof.fields) == 1:
            real_oneof = None  # synthetic oneof of a proto3 `optional` field
            if not f.proto3_optional:
                self.err(f"{where}: Envoy declares it `optional` (explicit presence); ours does not")
        if our_oneof != real_oneof:
            self.err(f"{where}: oneof {our_oneof or '(none)'}, Envoy has {real_oneof or '(none)'}")

    def check_map(self, where, our_entry, rf):
        if our_entry is None or not our_entry.options.map_entry:
            self.err(f"{where}: Envoy's field is a map, ours is not")
            return
        if not is_map(rf):
            self.err(f"{where}: ours is a map, Envoy's field is not")
            return
        ours = {x.name: x for x in our_entry.field}
        for side in ("key", "value"):
            o, r = ours.get(side), rf.message_type.fields_by_name[side]
            if o is None:
                self.err(f"{where}: map entry has no {side}")
                continue
            if o.type != r.type:
                self.err(f"{where}: map {side} type {TYPE_NAMES.get(o.type)}, "
                         f"Envoy has {TYPE_NAMES.get(r.type)}")
            rt = r.message_type or r.enum_type
            if rt is not None and o.type_name.lstrip(".") != rt.full_name:
                self.err(f"{where}: map {side} type {o.type_name.lstrip('.')}, Envoy has {rt.full_name}")


def collect_ours(fds, our_files):
    by_name = {}

    def walk(prefix, m):
        full = f"{prefix}.{m.name}"
        by_name[full] = m
        for n in m.nested_type:
            walk(full, n)

    for fp in fds.file:
        if fp.name in our_files:
            for m in fp.message_type:
                walk(fp.package, m)
    return by_name


def main():
    if not os.path.isdir(PROTO_DIR):
        sys.exit(f"check_protos: {PROTO_DIR} not found")
    files = list_protos()
    if not files:
        sys.exit(f"check_protos: no .proto files under {PROTO_DIR}")
    fds = compile_ours(files)
    ours = [fp for fp in fds.file if fp.name in set(files)]
    pool, missing = load_real(files)
    checker = Checker(pool, collect_ours(fds, set(files)))
    checker.errors.extend(missing)
    real_files = {}
    for fp in ours:
        checker.check_file(fp, real_files)
        # every import must be Envoy's import too (or a well-known type); no stray deps
        rfd = real_files.get(fp.name)
        if rfd is not None:
            real_deps = {d.name for d in rfd.dependencies}
            for dep in fp.dependency:
                if dep not in real_deps and not dep.startswith("google/protobuf/"):
                    checker.err(f"{fp.name}: imports {dep}, which Envoy's file does not import")
    for e in checker.errors:
        print(f"MISMATCH {e}")
    if checker.errors:
        print(f"check_protos: {len(checker.errors)} mismatch(es) in {len(files)} files")
        return 1
    print(f"check_protos: OK: {len(files)} files, {checker.n_messages} messages, "
          f"{checker.n_fields} fields, {checker.n_oneofs} oneofs, {checker.n_enums} enums, "
          f"{checker.n_values} enum values checked against xds-protos; 0 mismatches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
