//! Binary protobuf input: the same dumps read as JSON and as binary give the same model.
//!
//! The binary files are made at test time by `tests/oracle/to_binary.py`, which parses the JSON
//! captures with Google's protobuf library and the official Envoy protos (xds-protos), so the
//! binary side shares no code with Heft.

mod common;

use common::*;
use heft::cost::stream::CostFold;
use heft::pb::envoy::admin::v3 as admin;
use heft::pb::envoy::config::bootstrap::v3::Bootstrap;
use heft::pb::envoy::config::cluster::v3::{cluster, Cluster};
use heft::pb::envoy::config::core::v3::{self as core, Node};
use heft::pb::envoy::config::endpoint::v3 as endpoint;
use heft::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use heft::pb::envoy::service::discovery::v3::DiscoveryResponse;
use heft::pb::prost::Message;
use heft::pb::prost_types::{value::Kind, Any, Struct, Value};
use heft::stream::{self, Detail};
use heft::summary_types::SummaryFold;
use heft::{Dump, ErrorKind, Summary};
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heft-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the converter; returns (input, Ok(output dir) or Err(reason)) per input, or `None`
/// (said) when the oracle virtualenv is missing.
fn convert(inputs: &[PathBuf], out: &Path) -> Option<Vec<(PathBuf, Result<PathBuf, String>)>> {
    let python = oracle_python_of("protobuf")?;
    let result = Command::new(python)
        .arg(repo().join("tests/oracle/to_binary.py"))
        .arg(out)
        .args(inputs)
        .output()
        .expect("the oracle python runs");
    assert!(
        result.status.success(),
        "to_binary.py failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let lines: Vec<J> = String::from_utf8(result.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), inputs.len());
    let converted = inputs
        .iter()
        .zip(lines)
        .map(|(input, line)| {
            let r = match line.get("dir").and_then(J::as_str) {
                Some(d) => Ok(PathBuf::from(d)),
                None => Err(line["error"].as_str().unwrap_or("?").to_string()),
            };
            (input.clone(), r)
        })
        .collect();
    Some(converted)
}

/// Compares two values, naming the first differing list element for a readable failure.
fn assert_same(json: &J, binary: &J, what: &str) {
    if json == binary {
        return;
    }
    if let (J::Object(a), J::Object(b)) = (json, binary) {
        for (k, av) in a {
            let bv = b.get(k).unwrap_or(&J::Null);
            if av != bv {
                if let (J::Array(x), J::Array(y)) = (av, bv) {
                    assert_eq!(x.len(), y.len(), "{what}: {k} counts differ");
                    for (i, (p, q)) in x.iter().zip(y).enumerate() {
                        assert_eq!(p, q, "{what}: {k}[{i}] differs (left JSON, right binary)");
                    }
                }
                assert_eq!(av, bv, "{what}: {k} differs (left JSON, right binary)");
            }
        }
    }
    assert_eq!(json, binary, "{what} differs (left JSON, right binary)");
}

const ALL_KINDS: [&str; 5] = [
    "clusters",
    "listeners",
    "route_configs",
    "endpoint_configs",
    "secrets",
];

/// Compares the resources of the given kinds (`Dump` fields), their metadata left aside.
fn assert_same_resources(json: &Dump, got: &Dump, what: &str, kinds: &[&str]) {
    let json = normalised(json, Order::MapsUnordered, true);
    let got = normalised(got, Order::MapsUnordered, true);
    for kind in kinds {
        assert!(json.get(kind).is_some(), "{kind} is a field of Dump");
        assert_same(&json[kind], &got[kind], &format!("{what} {kind}"));
    }
}

fn inputs() -> Vec<PathBuf> {
    let mut files = captures(&["config_dump.json"]);
    let fx = fixtures();
    let mut more: Vec<PathBuf> = Vec::new();
    let mut stack = vec![fx];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                more.push(p);
            }
        }
    }
    more.sort();
    files.extend(more);
    files
}

#[test]
fn json_and_binary_dumps_give_the_same_model_on_every_real_capture() {
    let out = temp_dir("protobuf-equivalence");
    let inputs = inputs();
    let Some(converted) = convert(&inputs, &out) else {
        return;
    };
    let mut compared = 0;
    let mut detailed_tls = 0;
    let mut from_prost_clusters = 0;
    let mut detailed_routes = 0;
    for (input, result) in converted {
        let name = input.display().to_string();
        let dir = match result {
            Ok(dir) => dir,
            Err(reason) => {
                // Real captures must convert; istioctl fixtures that are not ConfigDumps
                // (sections, resource lists) have no binary ConfigDump form.
                assert!(
                    !name.contains("testdata/real") && reason.contains("not a ConfigDump"),
                    "{name}: {reason}"
                );
                eprintln!("skipped {name}: {reason}");
                continue;
            }
        };
        let json = Dump::from_path(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let binary =
            Dump::from_path(dir.join("config_dump.pb")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(binary.source.encoding, "protobuf");
        assert_eq!(binary.source.format, json.source.format);
        assert_same(
            &normalised(Summary::of(&json), Order::MapsUnordered, false),
            &normalised(Summary::of(&binary), Order::MapsUnordered, false),
            &format!("{name}: summary"),
        );
        assert_same(
            &normalised(&json, Order::MapsUnordered, false),
            &normalised(&binary, Order::MapsUnordered, false),
            &format!("{name}: model"),
        );
        // And the same costs, object by object.
        let model = heft::cost::CostModel::envoy_1_40();
        let settings = heft::cost::Settings::default();
        let costs = |d: &Dump| -> Vec<(String, heft::cost::Parts)> {
            let e = heft::cost::Estimate::of(d, &model, &settings);
            let mut v: Vec<_> = e
                .objects
                .iter()
                .map(|o| {
                    (
                        format!("{:?} {}", o.object.kind(), o.object.name()),
                        o.parts,
                    )
                })
                .collect();
            v.push((
                "total".into(),
                heft::cost::Parts {
                    config: e.total(),
                    ..Default::default()
                },
            ));
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(costs(&json), costs(&binary), "{name}: costs differ");

        // The same resources as DiscoveryResponses, one file per type and as a stream.
        let kinds = ["clusters", "listeners", "routes", "endpoints", "secrets"];
        let mut from_responses = Dump::from_slice(b"[]").unwrap();
        for kind in kinds {
            let d = Dump::from_path(dir.join(format!("{kind}.pb")))
                .unwrap_or_else(|e| panic!("{name} {kind}: {e}"));
            from_responses.clusters.extend(d.clusters);
            from_responses.listeners.extend(d.listeners);
            from_responses.route_configs.extend(d.route_configs);
            from_responses.endpoint_configs.extend(d.endpoint_configs);
            from_responses.secrets.extend(d.secrets);
        }
        let stream =
            Dump::from_path(dir.join("stream.pb")).unwrap_or_else(|e| panic!("{name} stream: {e}"));
        for (label, got) in [("responses", &from_responses), ("stream", &stream)] {
            assert_same_resources(&json, got, &format!("{name}: {label}"), &ALL_KINDS);
        }
        assert!(
            stream.opaque.is_empty(),
            "{name}: Resource wrappers unwrapped"
        );

        // The same clusters and load assignments handed over as prost messages, as a control
        // plane holds them, read the same.
        let decoded = |kind: &str| -> Vec<Any> {
            let bytes = std::fs::read(dir.join(format!("{kind}.pb"))).unwrap();
            DiscoveryResponse::decode(&bytes[..]).unwrap().resources
        };
        let from_prost = Dump::from_resources(heft::pb::Resources {
            clusters: decoded("clusters")
                .iter()
                .map(|a| Cluster::decode(&a.value[..]).unwrap())
                .collect(),
            load_assignments: decoded("endpoints")
                .iter()
                .map(|a| ClusterLoadAssignment::decode(&a.value[..]).unwrap())
                .collect(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{name}: from_resources: {e}"));
        from_prost_clusters += from_prost.clusters.len();
        assert_same_resources(
            &json,
            &from_prost,
            &format!("{name}: from_resources"),
            &["clusters", "endpoint_configs"],
        );

        // Read as `heft summary` reads it (`Detail::Shape`: TLS contexts keep only their side),
        // the binary gives the summary and costs of the whole read, and the same resources but
        // for the TLS contexts' insides.
        let pb = dir.join("config_dump.pb");
        let opts = heft::ReadOptions::default();
        let fold = (SummaryFold, CostFold::new(&model, &settings));
        let (outline, (counts, totals)) = stream::fold_path(&pb, &opts, &fold).unwrap();
        assert_eq!(
            SummaryFold.finish(&outline, counts),
            Summary::of(&binary),
            "{name}: summary fold"
        );
        assert_eq!(
            fold.1.finish(&totals).total(),
            heft::cost::Estimate::of(&binary, &model, &settings).total(),
            "{name}: cost fold"
        );
        let (_, shape) = stream::fold_path(&pb, &opts, &CollectAt(Detail::Shape)).unwrap();
        let (_, full) = stream::fold_path(&pb, &opts, &CollectAt(Detail::Full)).unwrap();
        detailed_tls += full
            .iter()
            .map(|r| blank_tls(&mut r.clone()))
            .sum::<usize>();
        detailed_routes += full.iter().map(dynamic_routes_with_details).sum::<usize>();
        let want: Vec<_> = full.into_iter().map(shape_of).collect();
        assert!(shape == want, "{name}: Shape read");

        // Compressed and streamed, the binary reads the same, spans included.
        let raw = std::fs::read(dir.join("config_dump.pb")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        let mut streamed = Dump::from_reader(&gz[..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(streamed.source.compression, "gzip");
        streamed.source.compression = "none";
        assert!(streamed == binary, "{name}: gzip stream reads differently");
        // Cut anywhere, the stream fails as the whole input does.
        for cut in (1..raw.len()).step_by(raw.len() / 40 + 1) {
            assert_stream_reads_as_whole(&raw[..cut], &format!("{name} cut at {cut}"));
        }
        compared += 1;
    }
    assert!(compared >= 2, "compared {compared} dumps");
    assert!(
        detailed_routes >= 20,
        "{detailed_routes} dynamic routes with a timeout and a retry policy"
    );
    assert!(
        from_prost_clusters >= 40,
        "{from_prost_clusters} clusters from prost"
    );
    assert!(
        detailed_tls >= 20,
        "{detailed_tls} TLS contexts with details"
    );
    let _ = std::fs::remove_dir_all(&out);
}

// ---- Bad binary input: errors with a kind and an offset, never a panic. ----

fn any(type_name: &str, m: &impl Message) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: m.encode_to_vec(),
    }
}

fn small_dump() -> Vec<u8> {
    let clusters: Vec<admin::clusters_config_dump::DynamicCluster> = ["a", "b"]
        .iter()
        .map(|name| admin::clusters_config_dump::DynamicCluster {
            version_info: "1".into(),
            cluster: Some(any(
                "envoy.config.cluster.v3.Cluster",
                &Cluster {
                    name: (*name).into(),
                    cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                        cluster::DiscoveryType::Eds as i32,
                    )),
                    ..Default::default()
                },
            )),
            ..Default::default()
        })
        .collect();
    admin::ConfigDump {
        configs: vec![any(
            "envoy.admin.v3.ClustersConfigDump",
            &admin::ClustersConfigDump {
                dynamic_active_clusters: clusters,
                ..Default::default()
            },
        )],
    }
    .encode_to_vec()
}

/// A dump with a section of each kind the walk treats apart: the bootstrap (decoded first, with
/// its section's own timestamp), static and dynamic entries, an endpoint configuration, and a
/// section Heft keeps opaque.
fn sectioned_dump() -> Vec<u8> {
    let cluster = |name: &str| {
        any(
            "envoy.config.cluster.v3.Cluster",
            &Cluster {
                name: name.into(),
                ..Default::default()
            },
        )
    };
    let stamp = heft::pb::prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 5,
    };
    admin::ConfigDump {
        configs: vec![
            any(
                "envoy.admin.v3.BootstrapConfigDump",
                &admin::BootstrapConfigDump {
                    bootstrap: Some(Bootstrap {
                        node: Some(Node {
                            id: "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    last_updated: Some(stamp),
                },
            ),
            any(
                "envoy.admin.v3.ClustersConfigDump",
                &admin::ClustersConfigDump {
                    static_clusters: vec![admin::clusters_config_dump::StaticCluster {
                        cluster: Some(cluster("s")),
                        last_updated: Some(stamp),
                    }],
                    dynamic_active_clusters: vec![admin::clusters_config_dump::DynamicCluster {
                        version_info: "7".into(),
                        cluster: Some(cluster("outbound|80||a.ns.svc.cluster.local")),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ),
            any("envoy.admin.v3.SomethingNewConfigDump", &cluster("x")),
            any(
                "envoy.admin.v3.EndpointsConfigDump",
                &admin::EndpointsConfigDump {
                    dynamic_endpoint_configs: vec![
                        admin::endpoints_config_dump::DynamicEndpointConfig {
                            endpoint_config: Some(any(
                                "envoy.config.endpoint.v3.ClusterLoadAssignment",
                                &ClusterLoadAssignment {
                                    cluster_name: "outbound|80||a.ns.svc.cluster.local".into(),
                                    ..Default::default()
                                },
                            )),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
            ),
        ],
    }
    .encode_to_vec()
}

/// A binary input read from a stream gives what it gives read whole: the same dump, or the same
/// error (kind, offset, path and message); under `keep_going` too.
fn assert_stream_reads_as_whole(bytes: &[u8], what: &str) {
    let kept = heft::ReadOptions {
        keep_going: true,
        ..Default::default()
    };
    match (
        Dump::from_slice_with(bytes, &kept),
        Dump::from_reader_with(bytes, &kept),
    ) {
        (Ok(whole), Ok(streamed)) => {
            assert!(
                whole == streamed,
                "{what}: reads differently under keep_going"
            )
        }
        (Err(whole), Err(streamed)) => assert_eq!(
            whole.to_string(),
            streamed.to_string(),
            "{what}, keep_going"
        ),
        (whole, streamed) => panic!(
            "{what}, keep_going: read whole {:?}, streamed {:?}",
            whole.map(|_| ()),
            streamed.map(|_| ())
        ),
    }
    match (Dump::from_slice(bytes), Dump::from_reader(bytes)) {
        (Ok(whole), Ok(streamed)) => assert!(whole == streamed, "{what}: reads differently"),
        (Err(whole), Err(streamed)) => assert_eq!(
            (whole.kind(), whole.to_string()),
            (streamed.kind(), streamed.to_string()),
            "{what}"
        ),
        (whole, streamed) => panic!(
            "{what}: read whole {:?}, streamed {:?}",
            whole.map(|_| ()),
            streamed.map(|_| ())
        ),
    }
}

#[test]
fn a_stream_reads_as_the_whole_input_at_every_cut_and_corrupted_byte() {
    let bytes = sectioned_dump();
    let dump = Dump::from_reader(&bytes[..]).unwrap();
    assert_eq!(
        (
            dump.clusters.len(),
            dump.endpoint_configs.len(),
            dump.opaque.len()
        ),
        (2, 1, 1)
    );
    assert!(dump.bootstrap.is_some());
    for cut in 1..bytes.len() {
        assert_stream_reads_as_whole(&bytes[..cut], &format!("cut at {cut}"));
    }
    for i in 0..bytes.len() {
        for b in [0x00, 0x01, 0x07, 0x0a, 0x0f, 0x12, 0x7f, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] = b;
            assert_stream_reads_as_whole(&bad, &format!("byte {i} set to {b:#04x}"));
        }
    }
}

#[test]
fn under_keep_going_a_dump_cut_inside_a_section_keeps_the_entries_before_the_cut() {
    let bytes = sectioned_dump();
    let name = b"outbound|80||a.ns.svc.cluster.local";
    let cut = bytes.windows(name.len()).position(|w| w == name).unwrap();
    let opts = heft::ReadOptions {
        keep_going: true,
        ..Default::default()
    };
    let cut_short = Dump::from_slice(&bytes[..cut]).unwrap_err();
    // The clusters section's length runs past the end; its static cluster comes before the cut.
    for dump in [
        Dump::from_slice_with(&bytes[..cut], &opts).unwrap(),
        Dump::from_reader_with(&bytes[..cut], &opts).unwrap(),
    ] {
        assert_eq!(dump.clusters.len(), 1);
        assert_eq!(dump.clusters[0].name.as_ref(), "s");
        let last = dump.skipped.last().unwrap();
        assert_eq!(last.offset, cut_short.offset(), "{last:?}");
        assert!(
            last.reason.starts_with("reading stopped: length"),
            "{last:?}"
        );
    }
}

#[test]
fn configs_laid_out_otherwise_than_envoy_lays_them_out_stream_as_they_read_whole() {
    let bytes = sectioned_dump();
    let configs = admin::ConfigDump::decode(&bytes[..]).unwrap().configs;
    let tag_len = |field: u8, n: usize, out: &mut Vec<u8>| {
        out.push(field << 3 | 2);
        prost_length(out, n as u64);
    };
    let mut odd = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let mut element = Vec::new();
        match i {
            // As Envoy lays it out (a dump is told from its first element).
            0 => element = c.encode_to_vec(),
            // The payload before the type URL.
            1 => {
                tag_len(2, c.value.len(), &mut element);
                element.extend(&c.value);
                tag_len(1, c.type_url.len(), &mut element);
                element.extend(c.type_url.as_bytes());
            }
            // A field of no meaning after the payload, then the type URL again.
            _ => {
                tag_len(1, c.type_url.len(), &mut element);
                element.extend(c.type_url.as_bytes());
                tag_len(2, c.value.len(), &mut element);
                element.extend(&c.value);
                element.extend([0x18, 0x01]);
                tag_len(1, c.type_url.len(), &mut element);
                element.extend(c.type_url.as_bytes());
            }
        }
        tag_len(1, element.len(), &mut odd);
        odd.extend(element);
    }
    let dump = Dump::from_reader(&odd[..]).unwrap();
    assert_eq!((dump.clusters.len(), dump.endpoint_configs.len()), (2, 1));
    assert_stream_reads_as_whole(&odd, "reordered");
    for cut in 1..odd.len() {
        assert_stream_reads_as_whole(&odd[..cut], &format!("reordered, cut at {cut}"));
    }
}

#[test]
fn a_small_binary_dump_reads() {
    let dump = Dump::from_slice(&small_dump()).unwrap();
    assert_eq!(dump.source.encoding, "protobuf");
    assert_eq!(dump.clusters.len(), 2);
    assert_eq!(dump.clusters[1].name.as_ref(), "b");
    assert_eq!(dump.clusters[1].meta.version_info.as_deref(), Some("1"));
    let span = dump.clusters[1].meta.span.unwrap();
    assert!(span.offset > 0 && span.offset + span.len <= small_dump().len() as u64);
}

#[test]
fn a_truncated_binary_dump_is_a_syntax_error_with_an_offset() {
    let bytes = small_dump();
    let err = Dump::from_slice(&bytes[..bytes.len() - 5]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    assert_eq!(
        err.offset(),
        Some(1),
        "the first length runs past the end: {err}"
    );
    assert_eq!(err.path_string(), "configs[0]", "{err}");
}

#[test]
fn no_truncation_or_corruption_panics() {
    let bytes = small_dump();
    for cut in 1..bytes.len() {
        let _ = Dump::from_slice(&bytes[..cut]);
    }
    for i in 0..bytes.len() {
        for b in [0x00, 0x07, 0x0f, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] = b;
            if let Err(e) = Dump::from_slice(&bad) {
                assert!(
                    e.offset().is_some() || e.kind() == ErrorKind::WrongDocument,
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn an_overlong_varint_is_a_syntax_error_at_the_varint() {
    let mut bytes = small_dump();
    let at = bytes.len() as u64;
    bytes.push(0x0a);
    bytes.extend([0xff; 10]);
    bytes.push(0x01);
    let err = Dump::from_slice(&bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    assert_eq!(err.offset(), Some(at + 1), "{err}");
    assert!(err.message().contains("varint"), "{err}");
}

#[test]
fn a_wrong_wire_type_is_a_syntax_error_at_the_field() {
    // In the outer walk: `configs` (field 1) sent as a varint.
    let mut bytes = small_dump();
    let at = bytes.len() as u64;
    bytes.extend([0x08, 0x01]);
    let err = Dump::from_slice(&bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    assert_eq!(err.offset(), Some(at), "{err}");
    assert_eq!(
        err.path_string(),
        "configs[1]",
        "after the one config: {err}"
    );

    // Inside a resource, where prost decodes: Cluster.name (field 1) sent as a varint.
    let resp = DiscoveryResponse {
        type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
        resources: vec![Any {
            type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
            value: vec![0x08, 0x05],
        }],
        ..Default::default()
    }
    .encode_to_vec();
    let err = Dump::from_slice(&resp).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    assert!(err.message().contains("wire type"), "{err}");
    let at = err.offset().unwrap() as usize;
    assert_eq!(
        &resp[at..at + 2],
        &[0x08, 0x05],
        "points at the cluster: {err}"
    );
    assert_eq!(err.path_string(), "resources[0]");
}

#[test]
fn a_stream_length_prefix_past_the_end_is_a_syntax_error_at_the_prefix() {
    let frame = DiscoveryResponse {
        version_info: "1".into(),
        type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut bytes = Vec::new();
    prost_length(&mut bytes, frame.len() as u64);
    bytes.extend(&frame);
    let at = bytes.len() as u64;
    // A prefix claiming far more than the input holds: refused, never allocated.
    prost_length(&mut bytes, 1 << 40);
    bytes.extend(&frame);
    let err = Dump::from_slice(&bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    assert_eq!(err.offset(), Some(at), "{err}");
    assert_eq!(err.path_string(), "[1]");
}

fn prost_length(out: &mut Vec<u8>, n: u64) {
    heft::pb::prost::encoding::encode_varint(n, out);
}

#[test]
fn deep_recursion_is_too_deep_with_an_offset() {
    let mut v = Value {
        kind: Some(Kind::StringValue("x".into())),
    };
    for _ in 0..200 {
        v = Value {
            kind: Some(Kind::StructValue(Struct {
                fields: [("a".to_string(), v)].into_iter().collect(),
            })),
        };
    }
    let Some(Kind::StructValue(metadata)) = v.kind else {
        unreachable!()
    };
    let bootstrap = Bootstrap {
        node: Some(Node {
            id: "deep".into(),
            metadata: Some(metadata),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = admin::ConfigDump {
        configs: vec![any(
            "envoy.admin.v3.BootstrapConfigDump",
            &admin::BootstrapConfigDump {
                bootstrap: Some(bootstrap),
                last_updated: None,
            },
        )],
    }
    .encode_to_vec();
    let err = Dump::from_slice(&bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooDeep, "{err}");
    assert!(err.offset().is_some(), "{err}");
    assert_eq!(err.path_string(), "configs[0].bootstrap");
}

#[test]
fn binary_input_is_detected_from_content_through_compression() {
    let bytes = small_dump();
    let zst = zstd::encode_all(&bytes[..], 1).unwrap();
    let dump = Dump::from_slice(&zst).unwrap();
    assert_eq!(dump.source.compression, "zstd");
    assert_eq!(dump.source.encoding, "protobuf");
    assert_eq!(dump.clusters.len(), 2);
    let from_reader = Dump::from_reader(&bytes[..]).unwrap();
    assert_eq!(from_reader, Dump::from_slice(&bytes).unwrap());
}

/// Endpoint features the real captures do not show: more addresses per host, internal
/// addresses with an endpoint id, and an ECDS entry's name and config type.
const EXTRA_FEATURES: &str = r#"{"configs": [
 {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
  "dynamic_active_clusters": [{"version_info": "1", "cluster": {
   "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
   "name": "outbound|80||agg.default.svc.cluster.local",
   "connect_timeout": "1.5s",
   "typed_extension_protocol_options": {
    "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions",
     "idle_timeout": "60s"},
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
     "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
     "explicit_http_config": {"http2_protocol_options": {}}}},
   "cluster_type": {"name": "envoy.clusters.aggregate",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
     "clusters": ["a", "b"]}},
   "filters": [{"name": "envoy.filters.upstream_network.metadata_exchange",
    "typed_config": {"@type": "type.googleapis.com/google.protobuf.Empty"}}],
   "load_balancing_policy": {"policies": [{"typed_extension_config": {
    "name": "envoy.load_balancing_policies.round_robin",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"}}}]}}}]},
 {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
  "dynamic_endpoint_configs": [{"endpoint_config": {
   "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
   "cluster_name": "outbound|80||dual.default.svc.cluster.local",
   "endpoints": [{"lb_endpoints": [
    {"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}},
      "additional_addresses": [{"address": {"socket_address": {"address": "fd00::1", "port_value": 80}}}]},
     "health_status": "HEALTHY"},
    {"endpoint": {"address": {"envoy_internal_address": {
      "server_listener_name": "connect_originate", "endpoint_id": "10.0.0.2:80"}}},
     "health_status": "HEALTHY"}]}]}}]},
 {"@type": "type.googleapis.com/envoy.admin.v3.EcdsConfigDump",
  "ecds_filters": [{"version_info": "1", "ecds_filter": {
   "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
   "name": "ext-authz",
   "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
    "stat_prefix": "authz"}}}]}]}"#;

#[test]
fn custom_cluster_types_protocol_options_internal_addresses_and_ecds_read_the_same_from_binary() {
    let out = temp_dir("protobuf-extra");
    let input = out.join("extra.json");
    std::fs::write(&input, EXTRA_FEATURES).unwrap();
    let Some(mut converted) = convert(std::slice::from_ref(&input), &out.join("bin")) else {
        return;
    };
    let (_, result) = converted.remove(0);
    let dir = result.unwrap_or_else(|e| panic!("to_binary.py: {e}"));
    let json = Dump::from_path(&input).unwrap();
    let binary = Dump::from_path(dir.join("config_dump.pb")).unwrap();
    let eps: Vec<_> = json.endpoint_configs[0].endpoints().collect();
    assert_eq!(eps[0].additional_addresses.len(), 1);
    assert_eq!(eps[0].additional_addresses[0].to_string(), "[fd00::1]:80");
    assert_eq!(
        eps[1].address.as_ref().unwrap().to_string(),
        "envoy://connect_originate/10.0.0.2:80"
    );
    let agg = &binary.clusters[0];
    assert_eq!(agg.discovery.name(), "envoy.clusters.aggregate");
    assert_eq!(agg.http_protocol, Some(heft::model::HttpProtocol::Http2));
    assert_eq!(
        agg.connect_timeout,
        Some(std::time::Duration::from_millis(1500))
    );
    // The TCP options, the aggregate's config, the filters, the load-balancing policy.
    let types = |d: &Dump| -> Vec<String> {
        d.clusters[0]
            .extensions
            .iter()
            .map(|e| e.type_url.to_string())
            .collect()
    };
    assert_eq!(
        types(&binary),
        [
            "type.googleapis.com/envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions",
            "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
            "",
            ""
        ]
    );
    assert_eq!(
        types(&json),
        types(&binary),
        "in the order Envoy prints them"
    );
    assert_eq!(json.opaque[0].name.as_deref(), Some("ext-authz"));
    assert_eq!(
        json.opaque[0].config_type_url.as_deref(),
        Some("type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz")
    );
    assert_same(
        &normalised(&json, Order::MapsUnordered, false),
        &normalised(&binary, Order::MapsUnordered, false),
        "extra features: model",
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// A dump of one static cluster with one inline endpoint whose `istio` metadata names the
/// workload `workload`.
fn cluster_with_endpoint_workload(workload: &str) -> Vec<u8> {
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.into())),
    };
    let istio = Struct {
        fields: [("workload".to_string(), string(workload))]
            .into_iter()
            .collect(),
    };
    let lb = endpoint::LbEndpoint {
        metadata: Some(core::Metadata {
            filter_metadata: [("istio".to_string(), istio)].into_iter().collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = Cluster {
        name: "outbound|80||a.default.svc.cluster.local".into(),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: "a".into(),
            endpoints: vec![endpoint::LocalityLbEndpoints {
                lb_endpoints: vec![lb.clone(), lb],
                ..Default::default()
            }],
            policy: None,
        }),
        ..Default::default()
    };
    admin::ConfigDump {
        configs: vec![any(
            "envoy.admin.v3.ClustersConfigDump",
            &admin::ClustersConfigDump {
                static_clusters: vec![admin::clusters_config_dump::StaticCluster {
                    cluster: Some(any("envoy.config.cluster.v3.Cluster", &c)),
                    last_updated: None,
                }],
                ..Default::default()
            },
        )],
    }
    .encode_to_vec()
}

#[test]
fn bad_utf8_deep_in_a_cluster_is_reported_at_its_byte_with_its_path() {
    let good = cluster_with_endpoint_workload("reviews-v1;default");
    let dump = Dump::from_slice(&good).unwrap();
    let eps: Vec<_> = dump.clusters[0]
        .load_assignment
        .as_ref()
        .unwrap()
        .endpoints()
        .collect();
    assert_eq!(
        eps[1].metadata.istio_workload.as_deref(),
        Some("reviews-v1;default")
    );
    // Break the second endpoint's workload: the one byte turns invalid.
    let text = b"reviews-v1;default";
    let second = good
        .windows(text.len())
        .enumerate()
        .filter(|(_, w)| w == text)
        .map(|(i, _)| i)
        .nth(1)
        .unwrap();
    let mut bad = good.clone();
    bad[second + 3] = 0xff;
    let err = Dump::from_slice(&bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Utf8, "{err}");
    assert_eq!(err.offset(), Some(second as u64 + 3), "{err}");
    assert_eq!(
        err.path_string(),
        "configs[0].static_clusters[0].load_assignment.endpoints[0].lb_endpoints[1].metadata"
    );
}

#[test]
fn a_bad_resource_before_a_broken_end_is_the_error_and_keep_going_reports_both() {
    let good = cluster_with_endpoint_workload("reviews-v1;default");
    let text = b"reviews-v1;default";
    let at = good.windows(text.len()).position(|w| w == text).unwrap();
    let mut bad = good.clone();
    bad[at] = 0xff;
    // A `configs` field whose length runs past the end: the walk stops there, after the
    // cluster's batch may already be decoding.
    let end = bad.len() as u64;
    bad.extend([0x0a, 0x64]);
    let err = Dump::from_slice(&bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Utf8, "{err}");
    assert_eq!(err.offset(), Some(at as u64), "{err}");

    let kept = Dump::from_slice_with(
        &bad,
        &heft::ReadOptions {
            keep_going: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(kept.clusters.is_empty());
    let offsets: Vec<_> = kept.skipped.iter().map(|s| s.offset).collect();
    assert_eq!(
        offsets,
        [Some(at as u64), Some(end + 1)],
        "{:?}",
        kept.skipped
    );
    assert!(kept.skipped[1]
        .reason
        .starts_with("reading stopped: length 100"));
}

/// Dynamic routes with a timeout and a retry policy: details a Shape read must leave out.
fn dynamic_routes_with_details(r: &heft::stream::Resource) -> usize {
    let heft::stream::Resource::RouteConfig(rc) = r else {
        return 0;
    };
    if rc.meta.state == heft::model::State::Static {
        return 0;
    }
    rc.virtual_hosts
        .iter()
        .flat_map(|v| &v.routes)
        .filter(|r| {
            matches!(&r.action, heft::model::Action::Route(a)
                if a.timeout.is_some() && a.retry_policy.is_some())
        })
        .count()
}
