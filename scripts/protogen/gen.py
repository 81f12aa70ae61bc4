# Generator for proto/: writes Heft's trimmed Envoy protos from the real descriptors in
# xds-protos, following spec.SPEC. Run: .venv/oracle/bin/python scripts/protogen/gen.py
import importlib, os, sys, textwrap, collections
from google.protobuf import descriptor_pool, descriptor
from spec import SPEC
MODS = """envoy.admin.v3.config_dump_pb2 envoy.admin.v3.config_dump_shared_pb2 envoy.admin.v3.clusters_pb2 envoy.admin.v3.server_info_pb2 envoy.admin.v3.metrics_pb2
envoy.config.bootstrap.v3.bootstrap_pb2 envoy.config.cluster.v3.cluster_pb2 envoy.config.endpoint.v3.endpoint_pb2
envoy.config.listener.v3.listener_pb2 envoy.config.listener.v3.api_listener_pb2 envoy.config.route.v3.route_pb2
envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2
envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2
envoy.extensions.transport_sockets.tls.v3.tls_pb2 envoy.extensions.transport_sockets.tls.v3.secret_pb2
envoy.extensions.upstreams.http.v3.http_protocol_options_pb2 envoy.service.discovery.v3.discovery_pb2""".split()
for m in MODS: importlib.import_module(m)
pool = descriptor_pool.Default()
FD = descriptor.FieldDescriptor
SCALAR = {FD.TYPE_DOUBLE:'double',FD.TYPE_FLOAT:'float',FD.TYPE_INT64:'int64',FD.TYPE_UINT64:'uint64',FD.TYPE_INT32:'int32',
  FD.TYPE_FIXED64:'fixed64',FD.TYPE_FIXED32:'fixed32',FD.TYPE_BOOL:'bool',FD.TYPE_STRING:'string',FD.TYPE_BYTES:'bytes',
  FD.TYPE_UINT32:'uint32',FD.TYPE_SFIXED32:'sfixed32',FD.TYPE_SFIXED64:'sfixed64',FD.TYPE_SINT32:'sint32',FD.TYPE_SINT64:'sint64'}
WKT = {'google/protobuf/any.proto','google/protobuf/duration.proto','google/protobuf/struct.proto','google/protobuf/wrappers.proto','google/protobuf/timestamp.proto','google/protobuf/empty.proto'}
OUT = sys.argv[1]
msgs = {}
for name, sel in SPEC.items():
    d = pool.FindMessageTypeByName(name)
    allf = [f.name for f in d.fields]
    toks = sel.split()
    if toks and toks[0] == '*':
        excl = {t[1:] for t in toks[1:]}
        assert excl <= set(allf), (name, excl - set(allf))
        keep = [n for n in allf if n not in excl]
    else:
        bad = set(toks) - set(allf); assert not bad, (name, bad)
        keep = [n for n in allf if n in toks]
    msgs[name] = (d, keep)
enums = set()
errors = []
def need_type(owner, f):
    if f.message_type is not None:
        mt = f.message_type
        if mt.GetOptions().map_entry:
            for sub in mt.fields: need_type(owner, sub)
            return
        if mt.file.name in WKT: return
        if mt.full_name not in msgs: errors.append(f"{owner}.{f.name}: needs message {mt.full_name}")
    elif f.enum_type is not None:
        enums.add(f.enum_type.full_name)
for name, (d, keep) in msgs.items():
    if d.containing_type is not None and d.containing_type.full_name not in msgs:
        errors.append(f"{name}: parent not included")
    for f in d.fields:
        if f.name in keep: need_type(name, f)
if errors:
    print("\n".join(errors)); sys.exit(1)

def tref(pkg, full):
    return full[len(pkg)+1:] if full.startswith(pkg + '.') else full
def ftype(pkg, f):
    t = f.message_type or f.enum_type
    if t is not None:
        own = f.containing_type.full_name
        if f.containing_type.GetOptions().map_entry: own = f.containing_type.containing_type.full_name
        if t.full_name.startswith(own + '.'): return t.full_name[len(own)+1:]
        return tref(pkg, t.full_name)
    return SCALAR[f.type]
def deps_of(f, acc):
    t = f.message_type or f.enum_type
    if t is None: return
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        for sub in f.message_type.fields: deps_of(sub, acc)
        return
    acc.add(t.file.name)

def emit_enum(e, ind):
    out = [f"{ind}enum {e.name} {{"]
    for v in e.values:
        out.append(f"{ind}  {v.name} = {v.number};")
    out.append(f"{ind}}}")
    return out

def emit_msg(d, ind, pkg, imports):
    _, keep = msgs[d.full_name]
    out = [f"{ind}message {d.name} {{"]
    body = []
    for e in d.enum_types:
        if e.full_name in enums: body.append(emit_enum(e, ind+'  '))
    for n in d.nested_types:
        if n.full_name in msgs: body.append(emit_msg(n, ind+'  ', pkg, imports))
    flines = []
    done_oneofs = set()
    def fline(f, ind2):
        deps_of(f, imports)
        dep = "  // Deprecated upstream." if f.GetOptions().deprecated else ""
        mt = f.message_type
        if mt is not None and mt.GetOptions().map_entry:
            k, v = mt.fields_by_name['key'], mt.fields_by_name['value']
            return f"{ind2}map<{ftype(pkg,k)}, {ftype(pkg,v)}> {f.name} = {f.number};{dep}"
        lab = "repeated " if f.is_repeated else ""
        oo = f.containing_oneof
        if oo is not None and oo.name == '_' + f.name and len(oo.fields) == 1:
            lab = "optional "
        return f"{ind2}{lab}{ftype(pkg,f)} {f.name} = {f.number};{dep}"
    for f in d.fields:
        if f.name not in keep: continue
        oo = f.containing_oneof
        if oo is not None and not (oo.name == '_' + f.name and len(oo.fields) == 1):
            if oo.name in done_oneofs: continue
            done_oneofs.add(oo.name)
            flines.append(f"{ind}  oneof {oo.name} {{")
            for g in oo.fields:
                if g.name in keep: flines.append(fline(g, ind+'    '))
            flines.append(f"{ind}  }}")
        else:
            flines.append(fline(f, ind+'  '))
    omitted = [f"{f.name} = {f.number}" for f in d.fields if f.name not in keep]
    if omitted:
        txt = "Not included (skipped as unknown when decoding): " + ", ".join(o.replace(" ", "\x00") for o in omitted) + "."
        flines.extend(l.replace("\x00", " ") for l in textwrap.wrap(txt, 96, initial_indent=ind+"  // ", subsequent_indent=ind+"  // ", break_on_hyphens=False))
    for b in body:
        out.extend(b); out.append("")
    out.extend(flines)
    if out[-1] == "": out.pop()
    out.append(f"{ind}}}")
    return out

byfile = collections.OrderedDict()
for name, (d, _) in msgs.items():
    if d.containing_type is None: byfile.setdefault(d.file.name, set()).add(name)
for en in enums:
    e = pool.FindEnumTypeByName(en)
    if e.containing_type is None: byfile.setdefault(e.file.name, set()).add(en)
written = []
for fname, names in byfile.items():
    fdesc = pool.FindFileByName(fname)
    pkg = fdesc.package
    imports = set()
    parts = []
    for e in fdesc.enum_types_by_name.values():
        if e.full_name in names: parts.append(emit_enum(e, ''))
    for m in fdesc.message_types_by_name.values():
        if m.full_name in names: parts.append(emit_msg(m, '', pkg, imports))
    imports.discard(fname)
    hdr = [
        'syntax = "proto3";', '',
        f'// Heft\'s trimmed subset of Envoy\'s api/{fname}.',
        '// Package, message, enum and field names and field numbers match upstream Envoy, so real',
        '// Envoy messages decode with it; upstream fields left out here are skipped as unknown.',
        '// Validation/annotation options are dropped. Verified by scripts/check_protos.py.', '',
        f'package {pkg};', '']
    imps = sorted(imports, key=lambda x: (not x.startswith('envoy/'), x))
    if imps:
        hdr += [f'import "{i}";' for i in imps] + ['']
    body = []
    for p in parts:
        body.extend(p); body.append('')
    path = os.path.join(OUT, fname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as fh:
        fh.write("\n".join(hdr + body).rstrip('\n') + '\n')
    written.append(fname)
print("\n".join(sorted(written)))
print(len(msgs), "messages", len(enums), "enums")
