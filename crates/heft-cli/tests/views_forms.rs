//! `--raw` on every input form Heft reads: JSON prints the dump's own bytes; YAML and binary
//! protobuf, plain or compressed, print each resource as JSON converted from the input, say so
//! once on stderr, and redact secrets as the JSON path does.
//!
//! The real captures in YAML and protobuf come from `tests/oracle/istioctl_forms.py` and
//! `tests/oracle/to_binary.py` (Google's protobuf library and PyYAML, no code shared with Heft);
//! those tests skip without the oracle virtualenv. The secret tests build their inputs here.

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const NOTE: &str = "heft: note: the input is";

/// `heft ARGS` on stdin bytes: (stdout, stderr), asserting success.
fn run(args: &[&str], stdin: Option<&[u8]>) -> (Vec<u8>, String) {
    let out = heft(args, stdin);
    assert!(
        out.status.success(),
        "heft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.stdout, String::from_utf8(out.stderr).unwrap())
}

const KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

/// A dump whose secret holds a private key Envoy did not redact, in YAML.
fn leaky_yaml() -> String {
    format!(
        r#"configs:
- "@type": type.googleapis.com/envoy.admin.v3.ClustersConfigDump
  dynamic_active_clusters:
  - version_info: "1"
    cluster:
      "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
      name: outbound|9080||reviews.default.svc.cluster.local
      type: EDS
      connect_timeout: 10s
- "@type": type.googleapis.com/envoy.admin.v3.SecretsConfigDump
  dynamic_active_secrets:
  - name: leaky
    secret:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
      name: leaky
      tls_certificate:
        certificate_chain:
          inline_string: chain
        private_key:
          inline_string: {}
"#,
        serde_json::to_string(KEY).unwrap()
    )
}

/// Protobuf wire format, by hand: a length-delimited field.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3 | 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn any(type_name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = field(1, format!("type.googleapis.com/{type_name}").as_bytes());
    out.extend(field(2, value));
    out
}

/// The same leaky secret as a binary `envoy.admin.v3.ConfigDump` (field numbers from Envoy's
/// protos: ConfigDump.configs 1; SecretsConfigDump.dynamic_active_secrets 2; DynamicSecret.name 1,
/// .secret 4; Secret.name 1, .tls_certificate 2; TlsCertificate.certificate_chain 1,
/// .private_key 2; DataSource.inline_string 3).
fn leaky_protobuf() -> Vec<u8> {
    let mut tls = field(1, &field(3, b"chain"));
    tls.extend(field(2, &field(3, KEY.as_bytes())));
    let mut secret = field(1, b"leaky");
    secret.extend(field(2, &tls));
    let mut entry = field(1, b"leaky");
    entry.extend(field(
        4,
        &any("envoy.extensions.transport_sockets.tls.v3.Secret", &secret),
    ));
    let section = field(2, &entry);
    field(1, &any("envoy.admin.v3.SecretsConfigDump", &section))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn raw_never_prints_a_private_key_from_yaml_or_protobuf() {
    let yaml = leaky_yaml().into_bytes();
    let pb = leaky_protobuf();
    for (form, bytes) in [
        ("yaml", yaml.clone()),
        ("yaml", gzip(&yaml)),
        ("yaml", zstd::encode_all(&yaml[..], 3).unwrap()),
        ("protobuf", pb.clone()),
        ("protobuf", gzip(&pb)),
        ("protobuf", zstd::encode_all(&pb[..], 3).unwrap()),
    ] {
        for args in [
            &["secrets", "--raw", "-"][..],
            &["secrets", "--raw", "-o", "json", "-"],
            &["secrets", "--istioctl", "-o", "json", "-"],
            &["secrets", "--istioctl", "-o", "yaml", "-"],
            &["secrets", "-o", "json", "-"],
            &["secrets", "-o", "yaml", "-"],
        ] {
            let (stdout, stderr) = run(args, Some(&bytes));
            let text = String::from_utf8(stdout).unwrap();
            assert!(
                !text.contains("-----BEGIN"),
                "{form} {args:?} printed the key:\n{text}"
            );
            assert!(
                !text.contains("MIIEvQ"),
                "{form} {args:?} printed the key:\n{text}"
            );
            if args.contains(&"--raw") {
                assert!(text.contains("[redacted]"), "{form} {args:?}:\n{text}");
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v[0]["name"], "leaky", "{form}");
                assert_eq!(
                    v[0]["tls_certificate"]["certificate_chain"]["inline_string"],
                    "chain"
                );
                assert_eq!(
                    stderr.matches(NOTE).count(),
                    1,
                    "{form} {args:?}: one note: {stderr}"
                );
                assert!(stderr.contains(&format!("{NOTE} {form}")), "{stderr}");
                assert!(
                    stderr.contains("[redacted]"),
                    "the redaction is said: {stderr}"
                );
            }
        }
    }
    // The YAML's cluster, as JSON.
    let (stdout, _) = run(&["clusters", "--raw", "-"], Some(&yaml));
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": "outbound|9080||reviews.default.svc.cluster.local",
            "type": "EDS",
            "connect_timeout": "10s"
        }])
    );
    // JSON input prints its own bytes and needs no note.
    let (_, stderr) = run(&["clusters", "--raw", SIDECAR], None);
    assert!(!stderr.contains(NOTE), "{stderr}");
}

/// Runs an oracle script into a fresh directory; `None` (said) without the virtualenv.
fn oracle(script: &str, test: &str, inputs: &[&str]) -> Option<(PathBuf, Value)> {
    let python = oracle_python_of(test)?;
    let out = std::env::temp_dir().join(format!("heft-{test}-{script}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let result = Command::new(python)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(repo().join("tests/oracle").join(script))
        .arg(&out)
        .args(inputs.iter().map(|i| repo().join(i)))
        .output()
        .expect("the oracle python runs");
    assert!(
        result.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(result.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Some((out, Value::Array(lines)))
}

fn raw_values(args: &[&str]) -> Vec<Value> {
    let (stdout, _) = run(args, None);
    serde_json::from_slice(&stdout).unwrap()
}

/// Whether the oracle's file is a DiscoveryResponse or a stream of them, not a ConfigDump.
fn is_resource_list(form: &Path) -> bool {
    let name = form.file_name().unwrap().to_string_lossy();
    name.ends_with(".pb") && name != "config_dump.pb"
}

fn sorted(list: &[Value]) -> Vec<Value> {
    let mut list = list.to_vec();
    list.sort_by_key(|v| v.to_string());
    list
}

/// Equal lists of resources, or a failure naming the first resource that differs (not both
/// whole lists).
fn assert_same(got: Vec<Value>, want: Vec<Value>, view: &str, form: &Path) {
    assert_eq!(got.len(), want.len(), "{view} {}: how many", form.display());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g == w,
            "{view} {}: resource {i} differs:\n{g:.400}\nwant:\n{w:.400}",
            form.display()
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn raw_on_every_form_of_the_real_captures_prints_the_same_resources() {
    let test = "raw_on_every_form_of_the_real_captures_prints_the_same_resources";
    let inputs = [SIDECAR, GATEWAY];
    let Some((yaml_dir, yaml)) = oracle("istioctl_forms.py", test, &inputs) else {
        return;
    };
    let (pb_dir, pb) = oracle("to_binary.py", test, &inputs).unwrap();
    let views = ["clusters", "listeners", "routes", "endpoints", "secrets"];
    for (i, input) in inputs.iter().enumerate() {
        let yaml = PathBuf::from(yaml[i]["dir"].as_str().unwrap());
        let pb = PathBuf::from(pb[i]["dir"].as_str().unwrap());
        let whole = [
            yaml.join("dump.original.yaml"),
            yaml.join("dump.camel.yaml"),
            pb.join("config_dump.pb"),
            pb.join("stream.pb"),
        ];
        let zipped = std::env::temp_dir().join(format!("heft-{test}-{i}.pb.zst"));
        let pb_bytes = std::fs::read(pb.join("config_dump.pb")).unwrap();
        std::fs::write(&zipped, zstd::encode_all(&pb_bytes[..], 3).unwrap()).unwrap();
        for view in views {
            let want = raw_values(&[view, "--raw", input]);
            assert!(!want.is_empty() || view == "secrets", "{view} {input}");
            let mut forms: Vec<PathBuf> = whole.to_vec();
            forms.push(zipped.clone());
            // A DiscoveryResponse of the view's kind alone.
            forms.push(pb.join(format!("{view}.pb")));
            if view != "secrets" {
                forms.push(yaml.join(format!("{view}.camel.yaml")));
            }
            for form in &forms {
                let got = raw_values(&[view, "--raw", path_str(form)]);
                // The camelCase YAML keeps istioctl's field names; the rest are Envoy's.
                if form.to_string_lossy().contains("camel") {
                    let name = |v: &Value| v["name"].clone();
                    let names = |l: &[Value]| l.iter().map(name).collect::<Vec<_>>();
                    let want_names = if view == "endpoints" {
                        want.iter().map(|v| v["cluster_name"].clone()).collect()
                    } else {
                        names(&want)
                    };
                    let got_names = if view == "endpoints" {
                        got.iter().map(|v| v["clusterName"].clone()).collect()
                    } else {
                        names(&got)
                    };
                    let (mut got_names, mut want_names) = (got_names, want_names);
                    if !form.to_string_lossy().contains("dump.") {
                        // A list of resources has no states: no static-after-dynamic order.
                        got_names.sort_by_key(Value::to_string);
                        want_names.sort_by_key(Value::to_string);
                    }
                    assert_eq!(got_names, want_names, "{view} {}", form.display());
                } else if is_resource_list(form) {
                    // A list of resources has no states, so no static-after-dynamic order.
                    assert_same(sorted(&got), sorted(&want), view, form);
                } else {
                    assert_same(got, want.clone(), view, form);
                }
            }
        }
        // istioctl's JSON of a converted dump is istioctl's JSON of the original (istioctl's
        // own camelCase form prints every field its printer writes, not only the dump's; a
        // stream has no states, and istioctl leaves out warming resources).
        let dumps = whole
            .iter()
            .filter(|f| !f.to_string_lossy().contains("camel") && !is_resource_list(f));
        for form in dumps {
            for view in ["clusters", "listeners"] {
                assert_eq!(
                    raw_values(&[view, "--istioctl", "-o", "json", path_str(form)]),
                    raw_values(&[view, "--istioctl", "-o", "json", input]),
                    "{view} {}",
                    form.display()
                );
            }
        }
        let _ = std::fs::remove_file(&zipped);
    }
    let _ = std::fs::remove_dir_all(&yaml_dir);
    let _ = std::fs::remove_dir_all(&pb_dir);
}

#[test]
fn the_shipped_envoy_descriptors_are_what_the_script_makes_from_xds_protos() {
    let Some(python) =
        oracle_python_of("the_shipped_envoy_descriptors_are_what_the_script_makes_from_xds_protos")
    else {
        return;
    };
    let out = Command::new(python)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(repo().join("scripts/envoy_descriptors.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = std::fs::read(repo().join("crates/heft-cli/data/envoy-api.binpb.zst")).unwrap();
    let shipped = zstd::decode_all(&shipped[..]).unwrap();
    assert!(
        shipped == out.stdout,
        "crates/heft-cli/data/envoy-api.binpb.zst is stale: regenerate it (scripts/envoy_descriptors.py)"
    );
}
