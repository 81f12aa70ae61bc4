//! Heft on dumps captured from a real Envoy 1.40, checked against independent readings.

mod common;

use common::*;
use heft::{Dump, ReadOptions, Summary};
use std::io::Write;

#[test]
fn summary_matches_the_independent_oracle_on_every_real_capture() {
    let mut files = captures(&[
        "config_dump.json",
        "config_dump_no_eds.json",
        "clusters.json",
    ]);
    let fx = fixtures();
    for f in [
        "configdump.json",
        "bootstrapdump.json",
        "endpoint/configdump.json",
        "secret/istio/config_dump.json",
        "secret/spire/config_dump.json",
        "routes/istio-gateway-http-route-prefix/configdump.json",
        "routes/k8s-gateway-http-route-path-prefix/configdump.json",
        "routes/empty-gateway/configdump.json",
        "endpoint/emptyfilter_output.json",
    ] {
        files.push(fx.join(f));
    }
    for path in files {
        let dump = Dump::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut ours = serde_json::to_value(Summary::of(&dump)).unwrap();
        for w in ours["warnings"].as_array_mut().unwrap() {
            w.as_object_mut().unwrap().remove("message");
        }
        // Checked against what the scenarios made (below), not re-derived by the oracle.
        for list in ["rejected", "warming"] {
            ours.as_object_mut().unwrap().remove(list);
        }
        let theirs = oracle_summary(&path);
        assert_eq!(ours, theirs, "summary of {} differs", path.display());
    }
}

#[test]
fn summary_lists_what_envoy_rejected_and_what_waits_as_the_scenario_made_them() {
    // testdata/README.md: push 3 adds a listener on virtualOutbound's address (NACKed) and the
    // checkout cluster whose endpoints never come; two file secrets are never answered.
    let sidecar = Summary::of(&Dump::from_path(capture("sidecar", "config_dump.json")).unwrap());
    let rejected: Vec<(&str, &str)> = sidecar
        .rejected
        .iter()
        .map(|r| (r.kind, r.name.as_str()))
        .collect();
    assert_eq!(rejected, [("listener", "127.0.0.1_15001")]);
    assert!(sidecar.rejected[0].message.contains("duplicate address"));
    assert!(sidecar.rejected[0].when.is_some());
    let warming: Vec<(&str, &str, Vec<&str>)> = sidecar
        .warming
        .iter()
        .map(|w| {
            (
                w.kind,
                w.name.as_str(),
                w.waits_for.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        warming,
        [
            (
                "cluster",
                "outbound|8080||checkout.shop.svc.cluster.local",
                vec!["endpoints (EDS)"]
            ),
            (
                "secret",
                "file-cert:/etc/certs/cert-chain.pem~/etc/certs/key.pem",
                vec!["its first SDS answer"]
            ),
            (
                "secret",
                "file-root:/etc/certs/root-cert.pem",
                vec!["its first SDS answer"]
            ),
        ]
    );
    // One push, all acknowledged: nothing rejected; registry-only keeps the sidecar scenario's
    // never-answered file secrets.
    let gateway = Summary::of(&Dump::from_path(capture("gateway", "config_dump.json")).unwrap());
    assert!(gateway.rejected.is_empty() && gateway.warming.is_empty());
    let registry =
        Summary::of(&Dump::from_path(capture("registry-only", "config_dump.json")).unwrap());
    assert!(registry.rejected.is_empty());
    assert_eq!(registry.warming, sidecar.warming[1..]);
}

#[test]
fn the_real_captures_hold_what_the_scenarios_put_in_them() {
    // Guards the corpus itself: if a capture lost a feature, the tests above would prove less.
    let sidecar = Dump::from_path(capture("sidecar", "config_dump.json")).unwrap();
    let s = Summary::of(&sidecar);
    assert!(s.clusters.by_state.warming > 0, "a warming cluster");
    assert!(s.listeners.by_state.draining > 0, "a draining listener");
    assert!(s.secrets.by_state.warming > 0, "a warming secret");
    assert!(s.clusters.by_state.static_ > 0 && s.clusters.by_state.active > 0);
    let with_tls_matches = sidecar
        .clusters
        .iter()
        .filter(|c| {
            c.transport_socket_matches
                .iter()
                .any(|m| m.socket.as_ref().is_some_and(|s| s.tls.is_some()))
        })
        .count();
    assert!(
        with_tls_matches > 0,
        "EDS clusters with mTLS socket matches"
    );
    assert!(sidecar.clusters.iter().any(|c| c
        .istio
        .as_ref()
        .and_then(|i| i.subset())
        .is_some_and(|s| !s.is_empty())));
    let weighted = sidecar.route_configs.iter().flat_map(|r| &r.virtual_hosts).flat_map(|v| &v.routes).any(|r| {
        matches!(&r.action, heft::model::Action::Route(a) if matches!(a.target, heft::model::RouteTarget::Weighted(_)))
    });
    assert!(weighted, "weighted routes");
    let tcp = sidecar
        .listeners
        .iter()
        .flat_map(|l| l.all_filter_chains())
        .flat_map(|c| &c.filters)
        .any(|f| matches!(f, heft::model::NetworkFilter::TcpProxy { .. }));
    assert!(tcp, "TCP proxy listeners");
    let nacked = sidecar.clusters.iter().any(|c| c.meta.error.is_some())
        || sidecar.listeners.iter().any(|l| l.meta.error.is_some())
        || !sidecar.rejected.is_empty();
    assert!(nacked, "a rejected update");

    let gateway = Dump::from_path(capture("gateway", "config_dump.json")).unwrap();
    let sni_chains = gateway
        .listeners
        .iter()
        .flat_map(|l| &l.filter_chains)
        .filter(|c| !c.filter_chain_match.server_names.is_empty())
        .count();
    assert!(sni_chains >= 2, "gateway SNI filter chains: {sni_chains}");
}

fn without_source(mut d: Dump) -> Dump {
    d.source.compression = "none";
    d
}

#[test]
fn every_way_of_reading_gives_the_same_dump() {
    for path in captures(&["config_dump.json", "clusters.json"]) {
        let text = bytes(&path);
        let name = path.display();
        let mapped = Dump::from_slice(&text).unwrap();
        assert_eq!(mapped.source.bytes, text.len() as u64);

        let file = Dump::from_path(&path).unwrap();
        assert_eq!(without_source(file), mapped, "{name}: file");

        for step in [1usize, 7, 4096] {
            let streamed = Dump::from_reader(Dribble(&text, step)).unwrap();
            assert_eq!(streamed, mapped, "{name}: stream, {step} bytes per read");
        }

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let from_gz = Dump::from_slice(&gz).unwrap();
        assert_eq!(from_gz.source.compression, "gzip");
        assert_eq!(without_source(from_gz), mapped, "{name}: gzip");

        let zst = zstd::encode_all(&text[..], 3).unwrap();
        let from_zst = Dump::from_reader(Dribble(&zst, 333)).unwrap();
        assert_eq!(from_zst.source.compression, "zstd");
        assert_eq!(without_source(from_zst), mapped, "{name}: zstd stream");
    }
}

#[test]
fn byte_spans_point_at_the_resources_in_the_input() {
    let path = capture("gateway", "config_dump.json");
    let text = bytes(&path);
    let dump = Dump::from_slice(&text).unwrap();
    for c in &dump.clusters {
        let span = c.meta.span.unwrap();
        let entry = &text[span.offset as usize..(span.offset + span.len) as usize];
        let value: serde_json::Value = serde_json::from_slice(entry).unwrap();
        assert_eq!(value["cluster"]["name"].as_str(), Some(&*c.name));
    }
    for s in &dump.sections {
        let sec = &text[s.span.offset as usize..(s.span.offset + s.span.len) as usize];
        let value: serde_json::Value = serde_json::from_slice(sec).unwrap();
        assert_eq!(value["@type"].as_str(), Some(&*s.type_url));
    }
}

#[test]
fn certificates_agree_with_istioctl_expected_output() {
    // istioctl's own expected `proxy-config secret` tables, for the same dumps.
    for case in ["istio", "spire"] {
        let dir = fixtures().join("secret").join(case);
        let dump = Dump::from_path(dir.join("config_dump.json")).unwrap();
        let table = std::fs::read_to_string(dir.join("output")).unwrap();
        let mut checked = 0;
        for line in table.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(serial) = cols
                .iter()
                .find(|c| c.len() >= 16 && c.chars().all(|ch| ch.is_ascii_hexdigit()))
            else {
                continue;
            };
            let secret = dump.secrets.iter().find(|s| *s.name == *cols[0]).unwrap();
            let cert = secret
                .certificates
                .iter()
                .find(|c| c.serial.trim_start_matches('0') == serial.trim_start_matches('0'))
                .unwrap_or_else(|| {
                    panic!(
                        "{case}: no certificate with serial {serial} in {}",
                        secret.name
                    )
                });
            assert!(
                line.contains(&*cert.not_after),
                "{line} vs {}",
                cert.not_after
            );
            assert!(
                line.contains(&*cert.not_before),
                "{line} vs {}",
                cert.not_before
            );
            checked += 1;
        }
        assert!(checked >= 1, "{case}: no certificate rows checked");
    }
}

#[test]
fn the_real_sidecar_secret_certificate_is_read() {
    let dump = Dump::from_path(capture("sidecar", "config_dump.json")).unwrap();
    let default = dump.secrets.iter().find(|s| &*s.name == "default").unwrap();
    assert_eq!(default.kind, heft::model::SecretKind::Certificate);
    let cert = &default.certificates[0];
    assert!(cert
        .sans
        .iter()
        .any(|s| s.starts_with("URI:spiffe://cluster.local/ns/default/sa/")));
    assert!(cert.not_after_unix > cert.not_before_unix);
    // Envoy redacts private keys; Heft keeps none at all.
    let debug = format!("{dump:?}");
    assert!(!debug.contains("PRIVATE KEY") && !debug.contains("[redacted]"));
}

#[test]
fn truncation_anywhere_is_a_syntax_error_at_or_before_the_cut() {
    let text = bytes(&capture("gateway", "config_dump.json"));
    let cuts = (1..text.len()).step_by(text.len() / 300 + 1);
    for cut in cuts {
        let err = Dump::from_slice(&text[..cut]).unwrap_err();
        assert!(
            matches!(err.kind(), heft::ErrorKind::Syntax),
            "cut at {cut}: {err}"
        );
        assert!(err.offset().unwrap() <= cut as u64, "cut at {cut}: {err}");
        let streamed = Dump::from_reader(Dribble(&text[..cut], 4096)).unwrap_err();
        assert_eq!(streamed.to_string(), err.to_string(), "cut at {cut}");
    }
}

/// Replaces the first `"name": "<value>"` after `marker` with `"name": 5`.
fn corrupt_name_after(text: &[u8], marker: &str) -> (Vec<u8>, usize) {
    let s = std::str::from_utf8(text).unwrap();
    let at = s.find(marker).unwrap();
    let name_at = at + s[at..].find("\"name\": \"").unwrap();
    let value_at = name_at + "\"name\": ".len();
    let value_end = value_at + 1 + s[value_at + 1..].find('"').unwrap() + 1;
    let mut out = text[..value_at].to_vec();
    out.extend_from_slice(b"5");
    out.extend_from_slice(&text[value_end..]);
    (out, value_at)
}

#[test]
fn a_bad_field_is_reported_with_its_offset_and_json_path() {
    let text = bytes(&capture("gateway", "config_dump.json"));
    let dump = Dump::from_slice(&text).unwrap();
    let section = dump
        .sections
        .iter()
        .position(|s| s.type_url.ends_with("ClustersConfigDump"))
        .unwrap();
    let (bad, at) = corrupt_name_after(&text, "\"dynamic_active_clusters\"");
    let err = Dump::from_slice(&bad).unwrap_err();
    assert_eq!(err.kind(), heft::ErrorKind::InvalidValue);
    assert_eq!(err.offset(), Some(at as u64));
    assert_eq!(
        err.path_string(),
        format!("configs[{section}].dynamic_active_clusters[0].cluster.name")
    );

    let kept = Dump::from_slice_with(
        &bad,
        &ReadOptions {
            keep_going: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(kept.clusters.len(), dump.clusters.len() - 1);
    assert_eq!(kept.skipped.len(), 1);
    assert_eq!(kept.skipped[0].path, err.path_string());
    // Everything after the bad value is read as before (its spans shift by the edit).
    let unspanned = |d: &Dump| {
        d.listeners
            .iter()
            .cloned()
            .map(|mut l| {
                l.meta.span = None;
                l
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(unspanned(&kept), unspanned(&dump));
}

#[test]
fn invalid_utf8_is_reported_at_its_byte() {
    let text = bytes(&capture("gateway", "config_dump.json"));
    let s = std::str::from_utf8(&text).unwrap();
    // Inside a resource (decoded), and inside the bootstrap's skipped parts alike.
    for marker in [
        "\"dynamic_active_clusters\"",
        "\"configs\"",
        "\"dynamic_route_configs\"",
    ] {
        let at = s.find(marker).unwrap() + 2;
        let mut bad = text.clone();
        bad[at] = 0xff;
        let err = Dump::from_slice(&bad).unwrap_err();
        assert_eq!(err.kind(), heft::ErrorKind::Utf8, "{marker}: {err}");
        assert_eq!(err.offset(), Some(at as u64), "{marker}: {err}");
    }
}

#[test]
fn other_envoy_documents_are_refused_with_what_they_are() {
    let cases = [
        ("stats.json", "/stats?format=json"),
        ("server_info.json", "/server_info"),
        ("memory.json", "/memory"),
    ];
    for (file, what) in cases {
        for path in captures(&[file]) {
            let err = Dump::from_path(&path).unwrap_err();
            assert_eq!(
                err.kind(),
                heft::ErrorKind::WrongDocument,
                "{}",
                path.display()
            );
            assert!(err.to_string().contains(what), "{}: {err}", path.display());
        }
    }
}

#[test]
fn nesting_bombs_empty_and_foreign_inputs_fail_cleanly() {
    let bomb = "[".repeat(1_000_000);
    assert_eq!(
        Dump::from_slice(bomb.as_bytes()).unwrap_err().kind(),
        heft::ErrorKind::TooDeep
    );
    let inner_bomb = format!(
        r#"{{"configs": [{{"@type": "x", "a": {}}}]}}"#,
        "{\"a\":".repeat(100_000)
    );
    assert_eq!(
        Dump::from_slice(inner_bomb.as_bytes()).unwrap_err().kind(),
        heft::ErrorKind::TooDeep
    );
    // A deep value the decoder skips (scanner limit), and one it decodes (decoder limit).
    let skipped = format!(
        r#"[{{"name": "c", "type": "EDS", "metadata": {{"filter_metadata": {{"istio": {{"config": {}1{}}}}}}}}}]"#,
        "[".repeat(600),
        "]".repeat(600)
    );
    assert_eq!(
        Dump::from_slice(skipped.as_bytes()).unwrap_err().kind(),
        heft::ErrorKind::TooDeep
    );
    let decoded = format!(
        r#"[{{"node": {{"id": "x", "metadata": {{"a": {}1{}}}}}}}]"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    let err = Dump::from_slice(decoded.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), heft::ErrorKind::TooDeep);
    assert!(
        err.path_string().starts_with("[0].node.metadata.a[0][0]"),
        "{err}"
    );
    assert_eq!(
        Dump::from_slice(b"").unwrap_err().kind(),
        heft::ErrorKind::Empty
    );
    assert_eq!(
        Dump::from_slice(b"  \n ").unwrap_err().kind(),
        heft::ErrorKind::Empty
    );
    let yaml = b"apiVersion: networking.istio.io/v1\nkind: Sidecar\n";
    let err = Dump::from_slice(yaml).unwrap_err();
    assert!(err.to_string().contains("Kubernetes manifest"), "{err}");
    assert_eq!(err.line_column(), Some((1, 1)), "{err}");
    let err = Dump::from_slice(b"{\"configs\": [] } trailing").unwrap_err();
    assert_eq!(err.kind(), heft::ErrorKind::Syntax);
    assert_eq!(err.offset(), Some(17));
    let err = Dump::from_slice(&[0x1f, 0x8b, 0x08, 0, 1, 2, 3]).unwrap_err();
    assert_eq!(err.kind(), heft::ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("gzip"), "{err}");
}

#[test]
fn camel_case_field_names_read_the_same() {
    // istioctl prints lowerCamelCase; a mechanical renaming of every key must not change anything
    // but the byte spans.
    fn camel(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let mut out = String::new();
                        let mut up = false;
                        for ch in k.chars() {
                            if ch == '_' && !out.is_empty() {
                                up = true;
                            } else if up {
                                out.extend(ch.to_uppercase());
                                up = false;
                            } else {
                                out.push(ch);
                            }
                        }
                        // Map keys (metadata, protocol options) are data, not field names.
                        let data_key = k.contains('.')
                            || k.contains('-')
                            || k.chars().any(|c| c.is_ascii_uppercase());
                        (if data_key { k.clone() } else { out }, camel(v))
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
            other => other.clone(),
        }
    }
    for path in captures(&["config_dump.json"]) {
        let text = bytes(&path);
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let camel_text = serde_json::to_vec_pretty(&camel(&value)).unwrap();
        let a = Summary::of(&Dump::from_slice(&text).unwrap());
        let b = Summary::of(&Dump::from_slice(&camel_text).unwrap());
        let strip = |mut s: Summary| {
            s.input.bytes = 0;
            s.sections.iter_mut().for_each(|x| x.bytes = 0);
            s.opaque.bytes = 0;
            s
        };
        assert_eq!(strip(a), strip(b), "{}", path.display());
    }
}

#[test]
fn a_layout_that_misleads_the_fast_path_still_reads_exactly() {
    // A closing brace at the elements' own indentation inside the first element: splitting by
    // indentation cuts it wrong, the piece fails to decode, and the exact path takes over.
    let text = "[\n  {\"name\": \"a\", \"type\": \"EDS\", \"metadata\": {\"filter_metadata\": {\"x\": {\n  }}}},\n  {\"name\": \"b\", \"type\": \"EDS\"}\n]";
    let dump = Dump::from_slice(text.as_bytes()).unwrap();
    let names: Vec<&str> = dump.clusters.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        dump,
        Dump::from_reader(Dribble(text.as_bytes(), 5)).unwrap()
    );
    // And a bad entry is reported by the exact path, with its real index.
    let bad = text.replace("\"name\": \"b\"", "\"name\": 7");
    let err = Dump::from_slice(bad.as_bytes()).unwrap_err();
    assert_eq!(err.path_string(), "[1].name");
}
