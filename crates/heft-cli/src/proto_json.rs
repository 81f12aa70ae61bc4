//! Resources as `istioctl … -o json` prints them, and the redaction of secrets in anything
//! printed from the dump's own text.
//!
//! `istioctl` decodes each resource into Go's protobuf types and prints it with proto3 JSON
//! names: every message field name becomes lowerCamelCase (`lb_endpoints` → `lbEndpoints`), but
//! the keys of maps and the contents of `google.protobuf.Struct` values are data and stay as they
//! are (`filter_metadata` → `filterMetadata`, whose `istio` key and everything under it is kept).
//! Without Envoy's schemas at hand, this module knows the Envoy v3 fields whose values are maps
//! or `Struct`s (listed from the xds protos; a few names mean a map in one message and a message
//! in another, and are told apart by where they sit). Everything else is a message.

use serde_json::{Map, Value};

/// The resource or section `v` (either naming) with `istioctl`'s names; `drop_type` removes a
/// top-level `@type` (`istioctl` prints the message, not the `Any` that held it).
pub fn istioctl_json(v: &Value, drop_type: bool) -> Value {
    let mut out = message(v, None);
    if drop_type {
        if let Value::Object(m) = &mut out {
            m.shift_remove("@type");
        }
    }
    out
}

/// A proto3 JSON name back to the proto field name (`lbEndpoints` → `lb_endpoints`).
pub fn snake(key: &str) -> String {
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A proto field name as proto3 JSON writes it (`protoc`'s `ToJsonName`): each `_` dropped and
/// the character after it upper-cased.
pub fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// How a field's value is printed.
enum Kind {
    /// A message (or scalar): field names converted.
    Message,
    /// A map: keys kept, values converted as messages.
    Map,
    /// A `Struct`, `Value` or a map of them: kept as it is.
    Verbatim,
}

/// Fields that are maps in Envoy's v3 API, by proto name.
const MAPS: &[&str] = &[
    "typed_filter_metadata",
    "typed_extension_protocol_options",
    "typed_per_filter_config",
    "per_filter_config",
    "certificate_provider_instances",
    "cluster_min_healthy_percentages",
    "context_extensions",
    "dynamic_parameters",
    "params",
    "key_values",
    "source_codes",
    "providers",
    "requirement_map",
    "named_endpoints",
    "allowed_capabilities",
    "map",
    "args",
    "extraction_by_method",
    "extractions_by_method",
    "logging_by_method",
    "mapped_request_attributes",
    "mapped_response_attributes",
    "message_restrictions",
    "method_restrictions",
    "params_match",
    "request_extraction_by_field",
    "response_extraction_by_field",
    "request_field_extractions",
    "request_field_restrictions",
    "response_field_restrictions",
    "request_logging_by_field",
    "response_logging_by_field",
];

/// Fields whose value is a `Struct` (or a map of them) wherever they appear.
const STRUCTS: &[&str] = &[
    "filter_metadata",
    "json_format",
    "typed_json_format",
    "static_layer",
    "default_subset",
    "filter_context",
    "transport_socket_match_criteria",
    "record",
];

const STRUCT_TYPES: &[&str] = &[
    "type.googleapis.com/google.protobuf.Struct",
    "type.googleapis.com/google.protobuf.Value",
    "type.googleapis.com/google.protobuf.ListValue",
];

fn has(parent: &Map<String, Value>, field: &str) -> bool {
    parent.contains_key(field) || parent.contains_key(&lower_camel(field))
}

fn type_of(parent: &Map<String, Value>) -> &str {
    parent.get("@type").and_then(Value::as_str).unwrap_or("")
}

/// How field `name` (proto name) of object `parent`, itself the value of field `parent_key`,
/// is printed.
fn kind(name: &str, value: &Value, parent: &Map<String, Value>, parent_key: Option<&str>) -> Kind {
    if STRUCTS.contains(&name) {
        return Kind::Verbatim;
    }
    let object = value.is_object();
    match name {
        // Node and build metadata are Structs; the metadata of clusters, routes and endpoints is
        // `core.v3.Metadata`, a message.
        "metadata"
            if matches!(
                parent_key,
                Some("node" | "user_agent_build_version" | "version")
            ) =>
        {
            Kind::Verbatim
        }
        // A transport socket match's criteria.
        "match" if parent_key == Some("transport_socket_matches") => Kind::Verbatim,
        // `TypedStruct`, `Struct` in an `Any`, `Value`s beside a key (`KeyValuePair`,
        // `set_metadata`).
        "value"
            if object
                && (has(parent, "type_url")
                    || STRUCT_TYPES.contains(&type_of(parent))
                    || type_of(parent).ends_with("TypedStruct")
                    || has(parent, "key")
                    || has(parent, "metadata_namespace")) =>
        {
            Kind::Verbatim
        }
        // The deprecated `config` Structs of Google gRPC and dynamic OpenTracing.
        "config" if has(parent, "target_uri") || has(parent, "library") => Kind::Verbatim,
        "base" if parent_key == Some("runtime") => Kind::Verbatim,
        "aws" if parent_key == Some("segment_fields") => Kind::Verbatim,
        "attributes" if type_of(parent).ends_with("StaticConfigResourceDetectorConfig") => {
            Kind::Map
        }
        // RBAC's policies and a generic secret's secrets are maps; elsewhere they are lists.
        "policies" | "secrets" if object => Kind::Map,
        "requires" if has(parent, "name") && !has(parent, "match") => Kind::Map,
        "bucket_id_builder" if parent_key == Some("bucket_id_builder") => Kind::Map,
        _ if MAPS.contains(&name) && object => Kind::Map,
        _ => Kind::Message,
    }
}

/// A message (or a list of them, or a scalar) with its field names converted; `key` is the
/// field it is the value of.
fn message(v: &Value, key: Option<&str>) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, val) in m {
                if k.starts_with('@') {
                    out.insert(k.clone(), val.clone());
                    continue;
                }
                let name = snake(k);
                let converted = match kind(&name, val, m, key) {
                    Kind::Verbatim => val.clone(),
                    Kind::Map => map(val, &name),
                    Kind::Message => message(val, Some(&name)),
                };
                out.insert(lower_camel(&name), converted);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| message(x, key)).collect()),
        other => other.clone(),
    }
}

fn map(v: &Value, name: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, val)| (k.clone(), message(val, Some(name))))
                .collect(),
        ),
        other => message(other, Some(name)),
    }
}

/// What Envoy prints instead of a sensitive `string` or `bytes` value.
const REDACTED: &str = "[redacted]";
/// `[redacted]` in base64, for `bytes` fields.
const REDACTED_BYTES: &str = "W3JlZGFjdGVkXQ==";

/// Fields Envoy marks sensitive (`udpa.annotations.sensitive`), by proto name, with the field
/// their parent object must be the value of when the name alone is too common.
const SENSITIVE: &[(&str, Option<&str>)] = &[
    ("private_key", None),
    ("password", None),
    ("pkcs12", None),
    ("auth_password", None),
    ("auth_username", None),
    ("downstream_auth_password", None),
    ("downstream_auth_passwords", None),
    ("downstream_auth_username", None),
    ("backend_token", None),
    ("secret_access_key", None),
    ("session_token", None),
    ("secret_data", None),
    ("credentials_data_source", None),
    ("web_identity_token_data_source", None),
    ("secret", Some("generic_secret")),
    ("secrets", Some("generic_secret")),
    ("keys", Some("session_ticket_keys")),
    ("typed_config", Some("private_key_provider")),
];

/// Quick test on raw text: could it hold a sensitive field at all?
pub fn may_hold_secrets(text: &[u8]) -> bool {
    const NEEDLES: &[&[u8]] = &[
        b"private_key",
        b"privateKey",
        b"password",
        b"Password",
        b"pkcs12",
        b"generic_secret",
        b"genericSecret",
        b"session_ticket_keys",
        b"sessionTicketKeys",
        b"private_key_provider",
        b"privateKeyProvider",
        b"auth_username",
        b"authUsername",
        b"backend_token",
        b"backendToken",
        b"secret_access_key",
        b"secretAccessKey",
        b"session_token",
        b"sessionToken",
        b"secret_data",
        b"secretData",
        b"credentials_data_source",
        b"credentialsDataSource",
        b"web_identity_token",
        b"webIdentityToken",
    ];
    NEEDLES
        .iter()
        .any(|n| memchr::memmem::find(text, n).is_some())
}

/// Replaces every sensitive value Envoy has not already redacted; returns whether anything was.
pub fn redact(v: &mut Value) -> bool {
    redact_in(v, None)
}

fn redact_in(v: &mut Value, key: Option<&str>) -> bool {
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                let name = snake(k);
                let sensitive = SENSITIVE
                    .iter()
                    .any(|(f, parent)| *f == name && parent.is_none_or(|p| Some(p) == key));
                changed |= if sensitive {
                    blank(val, &name)
                } else {
                    redact_in(val, Some(&name))
                };
            }
        }
        Value::Array(a) => {
            for x in a {
                changed |= redact_in(x, key);
            }
        }
        _ => {}
    }
    changed
}

fn blank(v: &mut Value, key: &str) -> bool {
    match v {
        Value::String(s) => {
            let want = if key == "inline_bytes" {
                REDACTED_BYTES
            } else {
                REDACTED
            };
            if s == REDACTED || s == REDACTED_BYTES {
                return false;
            }
            *s = want.to_string();
            true
        }
        Value::Object(m) => {
            let mut changed = false;
            for (k, x) in m.iter_mut() {
                if k.starts_with('@') {
                    continue;
                }
                changed |= blank(x, &snake(k));
            }
            changed
        }
        Value::Array(a) => {
            let mut changed = false;
            for x in a {
                changed |= blank(x, key);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Fields that are a map or a `Struct` in some messages and something else in others: `kind`
    /// tells them apart by where they sit. `key` is a map only in a gRPC-JSON transcoder response
    /// type that never appears in a config dump, and is printed as a message.
    const BY_CONTEXT: &[&str] = &[
        "metadata",
        "match",
        "value",
        "config",
        "base",
        "aws",
        "attributes",
        "policies",
        "secrets",
        "requires",
        "bucket_id_builder",
        "key",
    ];

    #[test]
    fn every_map_and_struct_field_of_envoys_v3_api_is_known() {
        // The field list comes from the xds-protos descriptors, as scripts/check_protos.py checks
        // Heft's protos.
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = repo.join(".venv/oracle/bin/python");
        if !python.exists() {
            // Fails instead under the README's test command, where everything must run.
            assert!(
                std::env::var_os("HEFT_REQUIRE_ENVOY").is_none(),
                "no {} (run scripts/setup.sh)",
                python.display()
            );
            eprintln!("skipped: no {} (run scripts/setup.sh)", python.display());
            return;
        }
        let out = std::process::Command::new(python)
            .arg(repo.join("tests/oracle/proto_maps.py"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fields: serde_json::Map<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert!(fields.len() > 40, "{fields:?}");
        for (name, kinds) in &fields {
            let kinds: Vec<&str> = kinds
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            let only_data = kinds.iter().all(|k| matches!(*k, "map" | "struct"));
            // A name kept whole everywhere must mean a Struct, or a message whose fields have no
            // `_` to convert (`record`: `KeyValuePair {key, value}` or a Struct).
            let known = if !only_data {
                BY_CONTEXT.contains(&name.as_str()) || STRUCTS.contains(&name.as_str())
            } else if kinds.contains(&"map") && !kinds.contains(&"struct") {
                MAPS.contains(&name.as_str())
            } else if kinds.contains(&"struct") && !kinds.contains(&"map") {
                STRUCTS.contains(&name.as_str()) || BY_CONTEXT.contains(&name.as_str())
            } else {
                // A map of Structs in one message, a Struct in another: kept whole either way.
                STRUCTS.contains(&name.as_str())
            };
            assert!(
                known,
                "field {name} ({kinds:?}) is not known to the istioctl printer"
            );
        }
    }

    #[test]
    fn field_names_convert_but_map_keys_and_structs_stay() {
        let v = json!({
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": "outbound|80||a",
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "x", "use_downstream_protocol_config": {}}},
            "metadata": {"filter_metadata": {"istio": {"default_original_port": 80}}},
            "transport_socket_matches": [{"name": "tlsMode-istio",
                "match": {"tls_mode": "istio"}, "transport_socket": {"typed_config": {}}}]
        });
        let out = istioctl_json(&v, true);
        assert_eq!(
            out,
            json!({
                "name": "outbound|80||a",
                "typedExtensionProtocolOptions": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "x", "useDownstreamProtocolConfig": {}}},
                "metadata": {"filterMetadata": {"istio": {"default_original_port": 80}}},
                "transportSocketMatches": [{"name": "tlsMode-istio",
                    "match": {"tls_mode": "istio"}, "transportSocket": {"typedConfig": {}}}]
            })
        );
        // Already converted input comes out the same.
        assert_eq!(istioctl_json(&out, true), out);
    }

    #[test]
    fn node_metadata_is_data_but_cluster_metadata_is_a_message() {
        let v = json!({"node": {"metadata": {"ISTIO_VERSION": "1.24", "PROXY_CONFIG": {"a_b": 1}},
            "user_agent_build_version": {"metadata": {"build.type": "RELEASE"}}}});
        let out = istioctl_json(&v, false);
        assert_eq!(out["node"]["metadata"]["ISTIO_VERSION"], "1.24");
        assert_eq!(out["node"]["metadata"]["PROXY_CONFIG"]["a_b"], 1);
        assert_eq!(
            out["node"]["userAgentBuildVersion"]["metadata"]["build.type"],
            "RELEASE"
        );
    }

    #[test]
    fn names_round_trip_like_protoc() {
        assert_eq!(
            lower_camel("http2_protocol_options"),
            "http2ProtocolOptions"
        );
        assert_eq!(snake("http2ProtocolOptions"), "http2_protocol_options");
        assert_eq!(lower_camel("name"), "name");
    }

    #[test]
    fn private_keys_are_redacted_unless_envoy_already_did() {
        let mut v = json!({"tls_certificate": {
            "certificate_chain": {"inline_bytes": "Y2VydA=="},
            "private_key": {"inline_bytes": "c2VjcmV0"}}});
        assert!(redact(&mut v));
        assert_eq!(
            v["tls_certificate"]["private_key"]["inline_bytes"],
            REDACTED_BYTES
        );
        assert_eq!(
            v["tls_certificate"]["certificate_chain"]["inline_bytes"],
            "Y2VydA=="
        );
        assert!(!redact(&mut v));
        let mut entry = json!({"secret": {"generic_secret": {"secret": {"inline_string": "t"}}}});
        assert!(redact(&mut entry));
        assert_eq!(
            entry["secret"]["generic_secret"]["secret"]["inline_string"],
            REDACTED
        );
    }
}
