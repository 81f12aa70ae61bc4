#!/usr/bin/env python3
"""Independent reading of the proxy-config views, standard library only.

Usage: views.py INPUT [SPECS]

INPUT is a /config_dump (or Envoy's /clusters?format=json), plain or gzip, in either proto JSON
naming. SPECS is a JSON file holding a list of {"view": NAME, "filter": {...}, "now": SECONDS}
(default: every view, unfiltered). For each spec, prints the rows istioctl proxy-config would
print, as lists of cell strings, in istioctl's order:

  {"rows": [[cell, ...], ...], "ordered": true|false}

"ordered" is false when istioctl's order depends on Go's unstable sort of more than 12 items
(Go insertion-sorts 12 or fewer, which this script reproduces), so only the rows, not their
order, can be checked. Views: clusters, listeners, listeners_short, routes, routes_short,
endpoints (config dump), hosts (/clusters), secrets, ecds.

The semantics are read from istioctl's public source (istioctl/pkg/writer/envoy/...) and written
here independently of Heft: Heft's crates/heft/tests/views.rs compares the two.
"""

import base64
import gzip
import json
import re
import sys
from datetime import datetime, timezone


def snake(obj):
    """lowerCamelCase message keys to snake_case; map keys ('.', '-', '|', ':' or capitals) kept."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k.startswith("@") or any(c in k for c in ".-|:/") or k[:1].isupper():
                out[k] = snake(v)
            else:
                out[re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k)] = snake(v)
        return out
    if isinstance(obj, list):
        return [snake(x) for x in obj]
    return obj


def go_insertion_sort(items, less):
    """Go's sort.Slice on 12 or fewer items: plain insertion sort, swapping while less(j, j-1)."""
    items = list(items)
    for i in range(1, len(items)):
        j = i
        while j > 0 and less(items[j], items[j - 1]):
            items[j], items[j - 1] = items[j - 1], items[j]
            j -= 1
    return items


def go_sort(items, less, key=None):
    """(sorted items, whether the order is exactly Go's)."""
    if len(items) <= 12:
        return go_insertion_sort(items, less), True
    if key is not None:
        return sorted(items, key=key), False
    return list(items), False


# ---- clusters -------------------------------------------------------------------------------

def subset_key(name):
    """(direction, subset, host, port) the way istioctl reads a cluster name."""
    parts = name.split("|")
    if len(parts) <= 3:
        return ("", "", name, 0)
    direction, port, subset = parts[0], parts[1], parts[2]
    host = "|".join(parts[3:])
    if "|" in host:
        host = ""
    m = re.fullmatch(r"[+-]?\d+", port)
    return (direction, subset, host, int(port) if m else 0)


def config_name(meta):
    path = (((meta or {}).get("filter_metadata") or {}).get("istio") or {}).get("config")
    if path is None:
        return ""
    if not path.startswith("/apis/networking.istio.io/"):
        return "<unknown>"
    pieces = path.split("/")
    if len(pieces) == 8 and pieces[4] == "namespaces":
        return f"{pieces[7]}.{pieces[5]}"
    return "" if len(pieces) > 4 and pieces[4] == "namespaces" else "<unknown>"


def clusters(dump, flt):
    found = []
    for key in ("dynamic_active_clusters", "static_clusters"):
        for sec in dump["sections"]:
            for e in sec.get(key, []):
                if "cluster" in e:
                    found.append(e["cluster"])
    for c in dump["bare"].get("cluster", []):
        found.append(c)
    rows = []
    for c in found:
        name = c.get("name", "")
        if flt.get("fqdn") and flt["fqdn"] not in name:
            continue
        if flt.get("direction") and flt["direction"] not in name:
            continue
        if flt.get("subset") and flt["subset"] not in name:
            continue
        if flt.get("port") and f"|{flt['port']}|" not in name:
            continue
        ctype = c.get("type", "STATIC")
        if isinstance(ctype, int):
            ctype = ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"][ctype]
        d, s, h, p = subset_key(name)
        if len(name.split("|")) > 3:
            cells = [h, str(p), s or "-", d, ctype, config_name(c.get("metadata"))]
        else:
            cells = [name, "-", "-", "-", ctype, config_name(c.get("metadata"))]
        rows.append(((h, s, p, d), cells))
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows], True


# ---- listeners ------------------------------------------------------------------------------

HCM = "envoy.filters.network.http_connection_manager"
TCP = "envoy.filters.network.tcp_proxy"
APP = [
    ("App: HTTP TLS", ["http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"]),
    ("App: Istio HTTP Plain", ["istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"]),
    ("App: TCP TLS", ["istio-peer-exchange", "istio"]),
    ("App: HTTP", ["http/1.0", "http/1.1", "h2c"]),
]


def chains_of(l):
    out = list(l.get("filter_chains", []))
    if "default_filter_chain" in l:
        out.append(l["default_filter_chain"])
    return out


def blackhole(f):
    return "BlackHoleCluster" in json.dumps(f.get("typed_config", {}))


def listener_type(l):
    http = tcp = 0
    for fc in chains_of(l):
        for f in fc.get("filters", []):
            if f.get("name") == HCM:
                http += 1
            elif f.get("name") == TCP and not blackhole(f):
                tcp += 1
    if http:
        return "HTTP+TCP" if tcp else "HTTP"
    return "TCP" if tcp else "UNKNOWN"


def describe_match(m):
    d = []
    if m.get("server_names"):
        d.append("SNI: " + ",".join(m["server_names"]))
    if m.get("transport_protocol"):
        d.append("Trans: " + m["transport_protocol"])
    apps = m.get("application_protocols")
    if apps:
        label = next((lbl for lbl, lst in APP if lst == apps), None)
        d.append(label or "App: " + ",".join(apps))
    port = f":{m['destination_port']}" if "destination_port" in m else ""
    if m.get("prefix_ranges"):
        ranges = ",".join(f"{p.get('address_prefix', '')}/{p.get('prefix_len', 0)}"
                          for p in m["prefix_ranges"])
        d.append(f"Addr: {ranges}{port}")
    elif port:
        d.append(f"Addr: *{port}")
    return "; ".join(d) if d else "ALL"


def path_text(m):
    out = []
    if m.get("prefix"):
        out.append(m["prefix"] + "*")
    if m.get("path_separated_prefix"):
        out.append("PathPrefix:" + m["path_separated_prefix"])
    if m.get("path"):
        out.append(m["path"])
    if "safe_regex" in m:
        out.append("regex " + m["safe_regex"].get("regex", ""))
    return " ".join(out)


def describe_inline(rc):
    vhs = rc.get("virtual_hosts", [])
    if len(vhs) == 1 and vhs[0].get("domains") == ["*"] and len(vhs[0].get("routes", [])) == 1:
        r = vhs[0]["routes"][0]
        if r.get("match", {}).get("prefix") == "/" and "cluster" in r.get("route", {}):
            c = r["route"]["cluster"]
            return c if "Cluster" in c else f"Cluster: {c}"
    parts = []
    for vh in vhs:
        routes = ", ".join(path_text(r.get("match", {})) for r in vh.get("routes", []))
        doms = vh.get("domains", [])
        parts.append(routes if doms == ["*"] else "/".join(doms) + " " + routes)
    return "Inline Route: " + "; ".join(parts)


def describe_destination(fc):
    for f in fc.get("filters", []):
        tc = f.get("typed_config", {})
        if f.get("name") == HCM:
            if "route_config" in tc:
                return describe_inline(tc["route_config"])
            name = tc.get("rds", {}).get("route_config_name", "")
            return f"Route: {name}" if name else "HTTP"
        if f.get("name") == TCP and not blackhole(f):
            c = tc.get("cluster", "")
            return c if "Cluster" in c else f"Cluster: {c}"
    return "Non-HTTP/Non-TCP"


def addresses_of(l):
    a = l.get("address", {})
    first = a.get("socket_address", {}).get("address") if "socket_address" in a else \
        a.get("pipe", {}).get("path", "")
    out = [first or ""]
    for extra in l.get("additional_addresses", []):
        out.append(extra.get("address", {}).get("socket_address", {}).get("address", ""))
    return out


def port_of(l):
    return l.get("address", {}).get("socket_address", {}).get("port_value", 0)


def all_listeners(dump):
    found = []
    for sec in dump["sections"]:
        for e in sec.get("dynamic_listeners", []):
            if "listener" in e.get("active_state", {}):
                found.append(e["active_state"]["listener"])
    for sec in dump["sections"]:
        for e in sec.get("static_listeners", []):
            if "listener" in e:
                found.append(e["listener"])
    return found


def listeners(dump, flt, short=False):
    kept = []
    for l in all_listeners(dump):
        if flt.get("address") and flt["address"].lower() not in [x.lower() for x in addresses_of(l)]:
            continue
        if flt.get("port") and port_of(l) != flt["port"]:
            continue
        if flt.get("type") and listener_type(l).lower() != flt["type"].lower():
            continue
        kept.append(l)
    key = lambda l: (port_of(l), addresses_of(l)[0], listener_type(l))
    kept, ordered = go_sort(kept, lambda a, b: key(a) < key(b), key=key)
    rows = []
    for l in kept:
        addr = ",".join(addresses_of(l))
        if short:
            rows.append([addr, str(port_of(l)), listener_type(l)])
            continue
        chains = [(describe_match(fc.get("filter_chain_match", {})), describe_destination(fc))
                  for fc in chains_of(l)]
        chains, ok = go_sort(chains, lambda a, b: a[1] > b[1])
        ordered = ordered and ok
        for m, d in chains:
            rows.append([addr, str(port_of(l)), m, d])
    return rows, ordered


# ---- routes ---------------------------------------------------------------------------------

def short_domains(domains):
    if not domains:
        return ""
    if len(domains) == 1:
        return domains[0]
    plain = [d for d in domains if ":" not in d or (d.count(":") > 2 and d.endswith("]"))]
    present = set(plain)
    kept = [d for d in plain if not any(
        d.endswith(suf) and d[: -len(suf)] in present for suf in (".svc.cluster.local", ".svc"))]
    if len(kept) > 2:
        return ", ".join(kept[:2]) + f" + {len(kept) - 2} more..."
    return ", ".join(kept)


def routes(dump, flt, short=False):
    found = []
    for key in ("dynamic_route_configs", "static_route_configs"):
        for sec in dump["sections"]:
            for e in sec.get(key, []):
                if "route_config" in e:
                    found.append(e["route_config"])
    found = [rc for rc in found if not flt.get("name") or rc.get("name", "") == flt["name"]]

    def num(n):
        return int(n) if re.fullmatch(r"[+-]?\d+", n or "") else None

    def less(a, b):
        x, y = num(a.get("name", "")), num(b.get("name", ""))
        return x is not None and y is not None and x < y

    found, ordered = go_sort(found, less)
    rows = []
    for rc in found:
        name = rc.get("name", "")
        if short:
            rows.append([name, str(len(rc.get("virtual_hosts", [])))])
            continue
        for vh in rc.get("virtual_hosts", []):
            doms = short_domains(vh.get("domains", []))
            for r in vh.get("routes", []):
                if r.get("route", {}).get("cluster") == "PassthroughCluster":
                    continue
                rows.append([name, vh.get("name", ""), doms, path_text(r.get("match", {})),
                             config_name(r.get("metadata"))])
            if not vh.get("routes"):
                rows.append([name, vh.get("name", ""), doms, "/*", "404"])
    return rows, ordered


# ---- endpoints ------------------------------------------------------------------------------

def endpoint_names(ep):
    e = ep.get("endpoint", {})
    out = []
    for a in [e.get("address", {})] + [x.get("address", {}) for x in e.get("additional_addresses", [])]:
        if "socket_address" in a:
            s = a["socket_address"]
            out.append(f"{s.get('address', '')}:{s.get('port_value', 0)}")
        elif "pipe" in a:
            out.append(a["pipe"].get("path", ""))
        elif "envoy_internal_address" in a and a["envoy_internal_address"].get("server_listener_name"):
            i = a["envoy_internal_address"]
            out.append(f"envoy://{i['server_listener_name']}/{i.get('endpoint_id', '')}")
        else:
            out.append("unknown")
    return out


def locality_text(l):
    out = l.get("region", "")
    if l.get("zone"):
        out += "/" + l["zone"]
        if l.get("sub_zone"):
            out += "/" + l["sub_zone"]
    return out


def endpoints(dump, flt):
    found = []
    for key in ("dynamic_endpoint_configs", "static_endpoint_configs"):
        for sec in dump["sections"]:
            for e in sec.get(key, []):
                if "endpoint_config" in e:
                    found.append(e["endpoint_config"])
    groups = []
    for cla in found:
        cluster = cla.get("cluster_name", "")
        rows = []
        for loc in cla.get("endpoints", []):
            for ep in loc.get("lb_endpoints", []):
                names = endpoint_names(ep)
                status = ep.get("health_status", "UNKNOWN")
                port = ep.get("endpoint", {}).get("address", {}).get("socket_address", {}).get("port_value", 0)
                if flt.get("address") and flt["address"].lower() not in [n.lower() for n in names]:
                    continue
                if flt.get("port") and port != flt["port"]:
                    continue
                if flt.get("cluster") and flt["cluster"].lower() != cluster.lower():
                    continue
                if flt.get("status") and flt["status"].lower() != status.lower():
                    continue
                rows.append([",".join(names), status, locality_text(loc.get("locality", {})), cluster])
        if rows:
            d, s, h, p = subset_key(cluster)
            groups.append(((h, s, p, d), rows))
    groups.sort(key=lambda g: g[0])
    return [r for _, rows in groups for r in rows], True


def hosts(dump, flt):
    rows = []
    for c in dump["cluster_statuses"]:
        for h in c.get("host_statuses", []):
            a = h.get("address", {})
            if "socket_address" in a:
                addr = a["socket_address"].get("address", "")
                port = a["socket_address"].get("port_value", 0)
            else:
                addr, port = "unix://" + a.get("pipe", {}).get("path", ""), 0
            hs = h.get("health_status", {})
            status = hs.get("eds_health_status", "UNKNOWN")
            if flt.get("address") and flt["address"].lower() != addr.lower():
                continue
            if flt.get("port") and flt["port"] != port:
                continue
            if flt.get("cluster") and flt["cluster"].lower() != c.get("name", "").lower():
                continue
            if flt.get("status") and flt["status"].lower() != status.lower():
                continue
            name = f"{addr}:{port}" if port else addr
            outlier = "FAILED" if hs.get("failed_outlier_check") else "OK"
            rows.append(((addr, port, c.get("name", "")), [name, status, outlier, c.get("name", "")]))
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows], True


# ---- secrets: a small DER reader ------------------------------------------------------------

def der(buf, pos):
    """(tag, content start, content end) of the TLV at pos."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def children(buf, start, end):
    out = []
    while start < end:
        tag, s, e = der(buf, start)
        out.append((tag, s, e))
        start = e
    return out


def der_time(tag, raw):
    text = raw.decode()
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)


def certificate(der_bytes):
    """(serial hex as istioctl prints it, not_before, not_after, is_ca, spiffe trust domain)."""
    _, s, e = der(der_bytes, 0)
    tbs = children(der_bytes, s, e)[0]
    fields = children(der_bytes, tbs[1], tbs[2])
    i = 1 if fields[0][0] == 0xA0 else 0
    serial = der_bytes[fields[i][1]:fields[i][2]].lstrip(b"\0").hex()
    validity = children(der_bytes, fields[i + 3][1], fields[i + 3][2])
    nb = der_time(validity[0][0], der_bytes[validity[0][1]:validity[0][2]])
    na = der_time(validity[1][0], der_bytes[validity[1][1]:validity[1][2]])
    is_ca, domain = False, None
    for tag, fs, fe in fields:
        if tag != 0xA3:
            continue
        for _, xs, xe in children(der_bytes, *children(der_bytes, fs, fe)[0][1:]):
            parts = children(der_bytes, xs, xe)
            oid = der_bytes[parts[0][1]:parts[0][2]]
            value = der_bytes[parts[-1][1]:parts[-1][2]]
            if oid == bytes([0x55, 0x1D, 0x13]):  # basicConstraints
                inner = children(value, *der(value, 0)[1:])
                is_ca = bool(inner) and inner[0][0] == 0x01 and value[inner[0][1]] != 0
            if oid == bytes([0x55, 0x1D, 0x11]):  # subjectAltName
                for gt, gs, ge in children(value, *der(value, 0)[1:]):
                    uri = value[gs:ge].decode(errors="replace")
                    if gt == 0x86 and uri.startswith("spiffe://") and domain is None:
                        domain = uri[len("spiffe://"):].split("/")[0] or None
    return serial, nb, na, is_ca, domain


def first_pem(data):
    m = re.search(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", data, re.S)
    return base64.b64decode(b"".join(m.group(1).split())) if m else None


def inline(ds):
    if not ds:
        return None
    if "inline_bytes" in ds:
        return base64.b64decode(ds["inline_bytes"])
    if "inline_string" in ds:
        return ds["inline_string"].encode()
    return None


def secrets(dump, flt, now):
    items = []
    for key, status in (("dynamic_warming_secrets", "WARMING"), ("dynamic_active_secrets", "ACTIVE")):
        for sec in dump["sections"]:
            for e in sec.get(key, []):
                s = e.get("secret", {})
                name = e.get("name") or s.get("name", "")
                pems = []
                if "tls_certificate" in s:
                    pems.append((None, inline(s["tls_certificate"].get("certificate_chain"))))
                vc = s.get("validation_context", {})
                pems.append((None, inline(vc.get("trusted_ca"))))
                tds = vc.get("custom_validator_config", {}).get("typed_config", {}).get("trust_domains", [])
                bundles = [(td.get("name"), inline(td.get("trust_bundle"))) for td in tds]
                pems = [(d, p) for d, p in pems if p]
                chosen = [(d, p) for d, p in bundles if p] or pems[:1] or [(None, None)]
                for domain, pem in chosen:
                    cert = first_pem(pem) if pem else None
                    if cert is None:
                        items.append((domain is not None, [name, "", status, "false", "", "", ""], domain))
                        continue
                    serial, nb, na, is_ca, san_domain = certificate(cert)
                    valid = nb.timestamp() <= now <= na.timestamp()
                    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
                    items.append((domain is not None,
                                  [name, "CA" if is_ca else "Cert Chain", status, str(valid).lower(),
                                   serial, iso(na), iso(nb)], domain or san_domain))
    with_domain = any(b for b, _, _ in items)
    rows = [cells + ([d or ""] if with_domain else []) for _, cells, d in items]
    return rows, True


# ---- ecds -----------------------------------------------------------------------------------

def ecds(dump, flt):
    rows = []
    for sec in dump["sections"]:
        for e in sec.get("ecds_filters", []):
            f = e.get("ecds_filter", {})
            t = f.get("typed_config", {}).get("@type", "")
            rows.append(((t, f.get("name", "")), [f.get("name", ""), t.replace("type.googleapis.com/", "", 1)]))
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows], True


# ---- driver ---------------------------------------------------------------------------------

def load(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    doc = snake(json.loads(raw))
    dump = {"sections": [], "bare": {}, "cluster_statuses": []}
    if isinstance(doc, dict) and "configs" in doc:
        dump["sections"] = doc["configs"]
    elif isinstance(doc, dict) and "cluster_statuses" in doc:
        dump["cluster_statuses"] = doc["cluster_statuses"]
    elif isinstance(doc, dict):
        dump["sections"] = [doc]
    return dump


VIEWS = ["clusters", "listeners", "listeners_short", "routes", "routes_short", "endpoints",
         "hosts", "secrets", "ecds"]


def run(dump, spec):
    view, flt = spec["view"], spec.get("filter", {})
    if view == "clusters":
        return clusters(dump, flt)
    if view == "listeners":
        return listeners(dump, flt)
    if view == "listeners_short":
        return listeners(dump, flt, short=True)
    if view == "routes":
        return routes(dump, flt)
    if view == "routes_short":
        return routes(dump, flt, short=True)
    if view == "endpoints":
        return endpoints(dump, flt)
    if view == "hosts":
        return hosts(dump, flt)
    if view == "secrets":
        return secrets(dump, flt, spec.get("now", datetime.now(timezone.utc).timestamp()))
    if view == "ecds":
        return ecds(dump, flt)
    raise SystemExit(f"unknown view {view}")


def main():
    dump = load(sys.argv[1])
    specs = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else [{"view": v} for v in VIEWS]
    out = []
    for spec in specs:
        rows, ordered = run(dump, spec)
        out.append({"rows": rows, "ordered": ordered})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
