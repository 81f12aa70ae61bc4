#!/usr/bin/env python3
"""Independent oracle for `heft summary -o json` (docs/summary-json.md), standard library only.

Usage: summary.py INPUT [--server-info SERVER_INFO_JSON]

Reads one Envoy admin document, plain or gzip (recognised by its magic bytes, not its name), and
prints the summary object with json.dumps(indent=2, sort_keys=True). It shares no code with Heft on
purpose: it parses with `json` and finds byte spans with json.JSONDecoder.raw_decode.

What the input may be, and how it is recognised (first match wins), giving `input.format`:
- `config_dump`: an object with `configs` (a `/config_dump` document).
- `cluster_statuses`: an object with `cluster_statuses` (`/clusters?format=json`).
- `section`: an object with an `@type` that is not a resource type, or with a section key
  (`static_clusters`, `dynamic_listeners`, `dynamic_active_secrets`, `bootstrap`, `ecds_filters`, ...;
  see SECTION_TYPES): one `configs` element on its own, e.g. istioctl's `proxy-config bootstrap -o json`
  or `proxy-config secret -o json`. Every section key it holds is read as in a full dump.
- `resource_list`: an array (e.g. istioctl's `proxy-config cluster -o json`). Each element is
  classified on its own. Dump entries are unwrapped first (`{"cluster": ...}`, `{"route_config": ...}`,
  `{"endpoint_config": ...}`, `{"secret": ...}`; a `{"listener": ...}` entry is one active listener;
  an entry with `active_state`/`warming_state`/`draining_state`/`error_state` is a dynamic listener
  entry). A bare resource is classified by its `@type` when it has one (Cluster, Listener,
  RouteConfiguration, ClusterLoadAssignment, Secret; any other `@type` is opaque), else by its keys,
  in this order: `virtual_hosts` or `vhds` -> route configuration; `cluster_name` with `endpoints` ->
  endpoint config; `host_statuses` or `added_via_api` -> a /clusters entry; `filter_chains`,
  `listener_filters`, `default_filter_chain`, or `address` without `cluster_name` -> listener;
  `tls_certificate`, `validation_context`, `session_ticket_keys` or `generic_secret` -> secret; a
  Cluster-only field (CLUSTER_KEYS: `type`, `connect_timeout`, `eds_cluster_config`, ...) -> cluster;
  nothing recognised -> opaque. Bare resources count as `active`.
Anything else (a lone resource object, `/memory`, `/stats`, `/server_info`) is refused: a message on
stderr, exit status 2.

Counting follows docs/summary-json.md. Where that document is silent, this oracle does:
- every `total` is the sum of its `by_state`: a dynamic listener with `active_state` and
  `draining_state` counts twice, an `error_state`-only entry not at all.
- a cluster entry without a `cluster` object still counts, with type `STATIC` (the proto3 default).
- `cluster_statuses` input: each entry is a cluster, `static` unless `added_via_api` is true; no
  `by_type` (that document has no cluster types); `endpoint_configs` stays 0.
- `opaque` counts what Heft keeps opaque: (a) each `configs` element whose `@type` is none of
  Bootstrap, Clusters, Endpoints, Listeners, Routes, ScopedRoutes, Secrets, Ecds `ConfigDump` (its
  whole byte length; its content is not read), (b) each entry of `inline_scoped_route_configs`,
  `dynamic_scoped_route_configs` and `ecds_filters` (the entry's byte length), and (c) each
  `resource_list` element that is not recognised (its byte length).
- byte lengths are UTF-8 lengths of a value's own text, first to last character (no surrounding
  whitespace or comma); `input.bytes` is the decompressed length.
- `sections`: for `config_dump`, one row per `configs` element. For `section`, one row for the whole
  object, typed by its `@type`, else by its first section key (`bootstrap` -> BootstrapConfigDump,
  `dynamic_active_clusters` -> ClustersConfigDump, ...). For the other formats, none.
- `node`: from the bootstrap's `node`; `envoy_version` is `user_agent_build_version.version` as
  `major.minor.patch` (absent numbers are 0), else, with `--server-info`, the version in its `version`
  string (`<sha>/1.40.0/Clean/RELEASE/BoringSSL`); without a bootstrap, the node comes from the
  server info's `node`. A field with no value is left out.
Both proto JSON namings are accepted everywhere (`dynamic_active_clusters`, `dynamicActiveClusters`).
"""

import argparse
import gzip
import json
import re
import sys

STATES = ("static", "active", "warming", "draining")
ADMIN = "type.googleapis.com/envoy.admin.v3."
KNOWN_SECTIONS = {"BootstrapConfigDump", "ClustersConfigDump", "EndpointsConfigDump", "ListenersConfigDump",
                  "RoutesConfigDump", "ScopedRoutesConfigDump", "SecretsConfigDump", "EcdsConfigDump"}
# Section key -> the admin dump type it belongs to.
SECTION_TYPES = {
    "bootstrap": "BootstrapConfigDump",
    "static_clusters": "ClustersConfigDump",
    "dynamic_active_clusters": "ClustersConfigDump",
    "dynamic_warming_clusters": "ClustersConfigDump",
    "static_listeners": "ListenersConfigDump",
    "dynamic_listeners": "ListenersConfigDump",
    "static_route_configs": "RoutesConfigDump",
    "dynamic_route_configs": "RoutesConfigDump",
    "static_endpoint_configs": "EndpointsConfigDump",
    "dynamic_endpoint_configs": "EndpointsConfigDump",
    "static_secrets": "SecretsConfigDump",
    "dynamic_active_secrets": "SecretsConfigDump",
    "dynamic_warming_secrets": "SecretsConfigDump",
    "inline_scoped_route_configs": "ScopedRoutesConfigDump",
    "dynamic_scoped_route_configs": "ScopedRoutesConfigDump",
    "ecds_filters": "EcdsConfigDump",
}
OPAQUE_ENTRY_KEYS = {"inline_scoped_route_configs", "dynamic_scoped_route_configs", "ecds_filters"}
RESOURCE_TYPES = {"Cluster": "cluster", "Listener": "listener", "RouteConfiguration": "route",
                  "ClusterLoadAssignment": "endpoint", "Secret": "secret"}
SECRET_KEYS = ("tls_certificate", "validation_context", "session_ticket_keys", "generic_secret")


class UnsupportedInput(ValueError):
    pass


# --- field access under both namings ------------------------------------------------------------

def camel(name):
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name):
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name)


def get(obj, name, default=None):
    """obj[name] under either proto JSON naming; `default` when absent or obj is not an object."""
    if not isinstance(obj, dict):
        return default
    if name in obj:
        return obj[name]
    return obj.get(camel(name), default)


def has(obj, name):
    return isinstance(obj, dict) and (name in obj or camel(name) in obj)


def type_suffix(obj):
    return str(get(obj, "@type", "")).rsplit(".", 1)[-1]


def section_keys(obj):
    """The section keys of an object, snake_case, in document order."""
    return [snake(k) for k in obj if snake(k) in SECTION_TYPES] if isinstance(obj, dict) else []


# --- raw spans ----------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def skip_ws(text, pos):
    return _WS.match(text, pos).end()


def value_span(text, pos):
    """(start, end) character offsets of the JSON value at or after `pos`."""
    start = skip_ws(text, pos)
    _, end = _DECODER.raw_decode(text, start)
    return start, end


def object_members(text, start):
    """(key, value_start, value_end) for each member of the object that starts at text[start]."""
    assert text[start] == "{", f"expected an object at character {start}"
    pos = skip_ws(text, start + 1)
    while text[pos] != "}":
        key, pos = _DECODER.raw_decode(text, pos)
        pos = skip_ws(text, pos)
        assert text[pos] == ":", f"expected ':' at character {pos}"
        value_start, value_end = value_span(text, pos + 1)
        yield key, value_start, value_end
        pos = skip_ws(text, value_end)
        if text[pos] == ",":
            pos = skip_ws(text, pos + 1)


def array_elements(text, start):
    """(start, end) of each element of the array that starts at text[start]."""
    assert text[start] == "[", f"expected an array at character {start}"
    pos = skip_ws(text, start + 1)
    while text[pos] != "]":
        element_start, element_end = value_span(text, pos)
        yield element_start, element_end
        pos = skip_ws(text, element_end)
        if text[pos] == ",":
            pos = skip_ws(text, pos + 1)


def utf8_length(text, start, end):
    return len(text[start:end].encode("utf-8"))


# --- counting -----------------------------------------------------------------------------------

class Summary:
    def __init__(self, text):
        self.text = text
        self.clusters = {s: 0 for s in STATES}
        self.cluster_types = {}
        self.listeners = {s: 0 for s in STATES}
        self.route_configs = {s: 0 for s in STATES}
        self.virtual_hosts = 0
        self.routes = 0
        self.endpoint_configs = 0
        self.endpoints = {}
        # Endpoints of clusters' own load_assignment: counted only when the input has no
        # endpoint configurations (a list of clusters), as pricing then takes them.
        self.inline_endpoints = {}
        self.secrets = {s: 0 for s in STATES}
        self.opaque_total = 0
        self.opaque_bytes = 0
        self.sections = []
        self.bootstrap = None

    def add_opaque(self, size):
        self.opaque_total += 1
        self.opaque_bytes += size

    def add_cluster(self, cluster, state):
        self.clusters[state] += 1
        custom = get(cluster, "cluster_type")
        kind = get(custom, "name") if isinstance(custom, dict) else None
        kind = kind or get(cluster, "type") or "STATIC"
        self.cluster_types[kind] = self.cluster_types.get(kind, 0) + 1
        for locality in get(get(cluster, "load_assignment", {}) or {}, "endpoints", []) or []:
            for endpoint in get(locality, "lb_endpoints", []) or []:
                health = get(endpoint, "health_status") or "UNKNOWN"
                self.inline_endpoints[health] = self.inline_endpoints.get(health, 0) + 1

    def add_dynamic_listener(self, entry):
        for state in ("active", "warming", "draining"):
            if has(entry, f"{state}_state"):
                self.listeners[state] += 1

    def add_route_config(self, route_config, state):
        self.route_configs[state] += 1
        for vhost in get(route_config, "virtual_hosts", []) or []:
            self.virtual_hosts += 1
            self.routes += len(get(vhost, "routes", []) or [])

    def add_endpoint_config(self, assignment):
        self.endpoint_configs += 1
        for locality in get(assignment, "endpoints", []) or []:
            for endpoint in get(locality, "lb_endpoints", []) or []:
                self.add_endpoint(get(endpoint, "health_status") or "UNKNOWN")

    def add_endpoint(self, health):
        self.endpoints[health] = self.endpoints.get(health, 0) + 1

    def add_cluster_status(self, cluster_status):
        """A /clusters entry: a cluster without a type, and one endpoint per host."""
        self.clusters["active" if get(cluster_status, "added_via_api") else "static"] += 1
        for host in get(cluster_status, "host_statuses", []) or []:
            self.add_endpoint(get(get(host, "health_status", {}), "eds_health_status") or "UNKNOWN")

    def read_section(self, section, start):
        """One section object (a `configs` element or a section-only document) at text[start]."""
        for entry in get(section, "static_clusters", []) or []:
            self.add_cluster(get(entry, "cluster", {}), "static")
        for entry in get(section, "dynamic_active_clusters", []) or []:
            self.add_cluster(get(entry, "cluster", {}), "active")
        for entry in get(section, "dynamic_warming_clusters", []) or []:
            self.add_cluster(get(entry, "cluster", {}), "warming")
        self.listeners["static"] += len(get(section, "static_listeners", []) or [])
        for entry in get(section, "dynamic_listeners", []) or []:
            self.add_dynamic_listener(entry)
        for entry in get(section, "static_route_configs", []) or []:
            self.add_route_config(get(entry, "route_config", {}), "static")
        for entry in get(section, "dynamic_route_configs", []) or []:
            self.add_route_config(get(entry, "route_config", {}), "active")
        for key in ("static_endpoint_configs", "dynamic_endpoint_configs"):
            for entry in get(section, key, []) or []:
                self.add_endpoint_config(get(entry, "endpoint_config", {}))
        for key, state in (("static_secrets", "static"), ("dynamic_active_secrets", "active"),
                           ("dynamic_warming_secrets", "warming")):
            self.secrets[state] += len(get(section, key, []) or [])
        if isinstance(get(section, "bootstrap"), dict):
            self.bootstrap = get(section, "bootstrap")
        if any(k in OPAQUE_ENTRY_KEYS for k in section_keys(section)):
            for key, value_start, _ in object_members(self.text, start):
                if snake(key) in OPAQUE_ENTRY_KEYS and self.text[value_start] == "[":
                    for entry_start, entry_end in array_elements(self.text, value_start):
                        self.add_opaque(utf8_length(self.text, entry_start, entry_end))

    def read_resource(self, element, size):
        """One element of a resource list, `size` bytes long; see the module docstring."""
        if not isinstance(element, dict):
            raise UnsupportedInput("a resource list element is not an object")
        for wrapper in ("cluster", "route_config", "endpoint_config", "secret"):
            if isinstance(get(element, wrapper), dict):
                return self.read_resource(get(element, wrapper), size)
        if any(has(element, f"{s}_state") for s in ("active", "warming", "draining", "error")):
            return self.add_dynamic_listener(element)
        if isinstance(get(element, "listener"), dict):
            self.listeners["active"] += 1
            return
        kind = resource_kind(element)
        if kind == "cluster":
            self.add_cluster(element, "active")
        elif kind == "listener":
            self.listeners["active"] += 1
        elif kind == "route":
            self.add_route_config(element, "active")
        elif kind == "endpoint":
            self.add_endpoint_config(element)
        elif kind == "secret":
            self.secrets["active"] += 1
        elif kind == "cluster_status":
            self.add_cluster_status(element)
        else:
            self.add_opaque(size)


CLUSTER_KEYS = ("type", "cluster_type", "eds_cluster_config", "connect_timeout", "lb_policy", "load_assignment",
                "transport_socket_matches", "circuit_breakers", "outlier_detection", "dns_lookup_family",
                "typed_extension_protocol_options", "common_lb_config", "health_checks", "lb_subset_config")


def resource_kind(element):
    """What a bare resource is, or None when nothing says (it is then kept opaque)."""
    if has(element, "@type"):
        return RESOURCE_TYPES.get(type_suffix(element))
    if has(element, "virtual_hosts") or has(element, "vhds"):
        return "route"
    if has(element, "cluster_name") and has(element, "endpoints"):
        return "endpoint"
    if has(element, "host_statuses") or has(element, "added_via_api"):
        return "cluster_status"
    if has(element, "filter_chains") or has(element, "listener_filters") or has(element, "default_filter_chain") or (
            has(element, "address") and not has(element, "cluster_name")):
        return "listener"
    if any(has(element, k) for k in SECRET_KEYS):
        return "secret"
    if any(has(element, k) for k in CLUSTER_KEYS):
        return "cluster"
    return None


def is_section(obj):
    return (has(obj, "@type") and type_suffix(obj) not in RESOURCE_TYPES) or bool(section_keys(obj))


# --- node ---------------------------------------------------------------------------------------

def version_from_server_info(server_info):
    match = re.search(r"/(\d+\.\d+\.\d+)(?:/|$)", str(get(server_info, "version", "")))
    return match.group(1) if match else None


def node_summary(bootstrap, server_info):
    node = get(bootstrap, "node", {}) if bootstrap else get(server_info, "node", {}) or {}
    result = {"id": get(node, "id"), "cluster": get(node, "cluster")}
    version = get(get(node, "user_agent_build_version", {}), "version")
    if isinstance(version, dict):
        result["envoy_version"] = "%d.%d.%d" % (get(version, "major_number", 0) or 0,
                                                get(version, "minor_number", 0) or 0,
                                                get(version, "patch", 0) or 0)
    elif server_info is not None:
        result["envoy_version"] = version_from_server_info(server_info)
    metadata = get(node, "metadata", {}) or {}
    for field, key in (("istio_version", "ISTIO_VERSION"), ("istio_proxy_sha", "ISTIO_PROXY_SHA"),
                       ("namespace", "NAMESPACE"), ("workload_name", "WORKLOAD_NAME")):
        result[field] = metadata.get(key)
    return {k: v for k, v in result.items() if v not in (None, "")}


# --- main ---------------------------------------------------------------------------------------

def read_input(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw), "gzip"
    return raw, "none"


def summarize(data, compression, server_info=None):
    text = data.decode("utf-8")
    document = json.loads(text)
    summary = Summary(text)
    if isinstance(document, dict) and has(document, "configs"):
        fmt = "config_dump"
        top = skip_ws(text, 0)
        configs_start = next(s for k, s, _ in object_members(text, top) if k == "configs")
        configs = get(document, "configs") or []
        spans = list(array_elements(text, configs_start)) if configs else []
        assert len(spans) == len(configs), "configs spans do not match the parsed array"
        for section, (start, end) in zip(configs, spans):
            size = utf8_length(text, start, end)
            summary.sections.append({"type": get(section, "@type", ""), "bytes": size})
            if type_suffix(section) in KNOWN_SECTIONS:
                summary.read_section(section, start)
            else:
                summary.add_opaque(size)
    elif isinstance(document, dict) and has(document, "cluster_statuses"):
        fmt = "cluster_statuses"
        for status in get(document, "cluster_statuses", []) or []:
            summary.add_cluster_status(status)
    elif isinstance(document, dict) and is_section(document):
        fmt = "section"
        start, end = value_span(text, 0)
        size = utf8_length(text, start, end)
        type_url = get(document, "@type") or ADMIN + SECTION_TYPES[section_keys(document)[0]]
        summary.sections.append({"type": type_url, "bytes": size})
        if type_url.rsplit(".", 1)[-1] in KNOWN_SECTIONS:
            summary.read_section(document, start)
        else:
            summary.add_opaque(size)
    elif isinstance(document, list):
        fmt = "resource_list"
        spans = list(array_elements(text, skip_ws(text, 0)))
        for element, (start, end) in zip(document, spans):
            summary.read_resource(element, utf8_length(text, start, end))
    else:
        raise UnsupportedInput("not a config dump, a section, a resource list or a /clusters document "
                               "(/memory, /stats and /server_info are not summarised)")

    def states(counts):
        return {"total": sum(counts.values()), "by_state": dict(counts)}

    endpoints = summary.endpoints
    if summary.endpoint_configs == 0:
        endpoints = dict(summary.inline_endpoints)
        for health, n in summary.endpoints.items():
            endpoints[health] = endpoints.get(health, 0) + n
    warnings = []
    if fmt == "cluster_statuses":
        warnings.append("cluster-statuses")
    else:
        if summary.cluster_types.get("EDS", 0) > 0 and summary.endpoint_configs == 0:
            warnings.append("no-endpoints")
        if summary.bootstrap is None:
            warnings.append("no-bootstrap")
        if fmt in ("section", "resource_list"):
            warnings.append("partial-dump")

    return {
        "input": {"format": fmt, "encoding": "json", "compression": compression, "bytes": len(data)},
        "node": node_summary(summary.bootstrap, server_info),
        "clusters": {**states(summary.clusters), "by_type": summary.cluster_types},
        "listeners": states(summary.listeners),
        "route_configs": states(summary.route_configs),
        "virtual_hosts": summary.virtual_hosts,
        "routes": summary.routes,
        "endpoint_configs": summary.endpoint_configs,
        "endpoints": {"total": sum(endpoints.values()), "by_health": endpoints},
        "secrets": states(summary.secrets),
        "opaque": {"total": summary.opaque_total, "bytes": summary.opaque_bytes},
        "sections": summary.sections,
        "skipped": [],
        # Codes only: the messages are Heft's wording, not a rule to check independently.
        "warnings": [{"code": code} for code in warnings],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print the summary JSON of one Envoy admin document.")
    parser.add_argument("input", help="config dump, section, resource list or /clusters JSON; plain or gzip")
    parser.add_argument("--server-info", help="a /server_info document, for envoy_version when the input has none")
    args = parser.parse_args(argv)
    server_info = None
    if args.server_info:
        server_info = json.loads(read_input(args.server_info)[0].decode("utf-8"))
    data, compression = read_input(args.input)
    try:
        summary = summarize(data, compression, server_info)
    except UnsupportedInput as error:
        print(f"summary.py: {args.input}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
