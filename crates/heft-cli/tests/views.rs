//! `heft clusters|listeners|routes|endpoints|secrets|bootstrap|ecds` as users run them: every
//! output format, `--raw` giving the dump's own bytes, `--istioctl -o json` agreeing with
//! Google's protobuf JSON printer on real captures, terminals, and errors.

mod common;

use common::*;

use serde_json::value::RawValue;
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Output, Stdio};

fn ok(args: &[&str]) -> Vec<u8> {
    let out = heft(args, None);
    assert!(
        out.status.success(),
        "heft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const LIVE: &str = "testdata/real/sidecar/clusters.json";
const VIEWS: [&str; 7] = [
    "clusters",
    "listeners",
    "routes",
    "endpoints",
    "secrets",
    "bootstrap",
    "ecds",
];

fn dump_text(path: &str) -> Vec<u8> {
    let raw = std::fs::read(repo().join(path)).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        raw
    }
}

#[test]
fn every_view_prints_the_same_rows_as_table_wide_json_and_yaml() {
    for input in [SIDECAR, GATEWAY, LIVE] {
        for view in VIEWS {
            if input == LIVE && view != "endpoints" {
                continue;
            }
            let json: Value = serde_json::from_slice(&ok(&[view, "-o", "json", input])).unwrap();
            let yaml: Value = yaml_serde::from_slice(&ok(&[view, "-o", "yaml", input])).unwrap();
            assert_eq!(json, yaml, "{view} {input}: JSON and YAML rows differ");
            let rows = json.as_array().expect("a list of rows").len();
            let table = String::from_utf8(ok(&[view, input])).unwrap();
            let wide = String::from_utf8(ok(&[view, "-o", "wide", input])).unwrap();
            // Piped: no colour, no cutting.
            assert!(!table.contains('\x1b') && !table.contains('…'), "{table}");
            let header = |t: &str| t.lines().next().unwrap().split_whitespace().count();
            if view != "bootstrap" {
                assert!(header(&wide) > header(&table), "{view}: wide adds columns");
            }
            let lines = table.lines().count() - 1;
            match view {
                // One line per filter chain and per route, one JSON row per listener / route.
                "listeners" => assert!(lines >= rows, "{view}"),
                "bootstrap" => assert_eq!(rows, 1),
                _ => assert_eq!(lines, rows, "{view} {input}: table lines vs JSON rows"),
            }
            if matches!(
                view,
                "clusters" | "listeners" | "routes" | "endpoints" | "secrets"
            ) && input != LIVE
            {
                assert!(table.lines().next().unwrap().ends_with("COST"), "{table}");
                assert!(
                    json[0].get("cost").is_some(),
                    "{view}: rows carry their cost"
                );
            }
        }
    }
}

#[test]
fn warming_and_draining_rows_get_a_state_column() {
    let clusters = String::from_utf8(ok(&["clusters", SIDECAR])).unwrap();
    assert!(clusters.lines().next().unwrap().contains("STATE"));
    assert!(clusters.contains("warming"));
    let listeners = String::from_utf8(ok(&["listeners", SIDECAR])).unwrap();
    assert!(listeners.contains("draining"));
    let gateway = String::from_utf8(ok(&["clusters", GATEWAY])).unwrap();
    assert!(!gateway.lines().next().unwrap().contains("STATE"));
}

/// Each element of `--raw`'s array, as its exact text.
fn raw_elements(out: &[u8]) -> Vec<String> {
    let v: Vec<Box<RawValue>> = serde_json::from_slice(out).unwrap();
    v.iter().map(|r| r.get().to_string()).collect()
}

#[test]
fn raw_prints_each_resource_byte_for_byte_as_the_dump_holds_it() {
    for input in [SIDECAR, GATEWAY] {
        let text = dump_text(input);
        for view in [
            "clusters",
            "listeners",
            "routes",
            "endpoints",
            "secrets",
            "ecds",
        ] {
            let out = ok(&[view, "--raw", input]);
            let elements = raw_elements(&out);
            let rows: Value = serde_json::from_slice(&ok(&[view, "-o", "json", input])).unwrap();
            let rows = rows.as_array().unwrap();
            for e in &elements {
                let at = memchr::memmem::find(&text, e.as_bytes())
                    .unwrap_or_else(|| panic!("{view}: not in the dump:\n{e}"));
                // A whole value of the dump: the key before it names the resource's field.
                let before = String::from_utf8_lossy(&text[at.saturating_sub(40)..at]);
                assert!(
                    before.trim_end().ends_with(':'),
                    "{view}: {e:.80} is not a value in the dump"
                );
            }
            let names: Vec<String> = elements
                .iter()
                .map(|e| {
                    let v: Value = serde_json::from_str(e).unwrap();
                    v.get("name")
                        .or_else(|| v.get("cluster_name"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            match view {
                "clusters" | "listeners" => {
                    let want: Vec<&str> =
                        rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
                    assert_eq!(names, want, "{view} {input}");
                }
                "endpoints" => {
                    let mut want: Vec<&str> = rows
                        .iter()
                        .map(|r| r["cluster"].as_str().unwrap())
                        .collect();
                    want.dedup();
                    assert_eq!(names, want, "{view} {input}");
                }
                _ => assert!(!elements.is_empty() || view == "ecds", "{view} {input}"),
            }
        }
        // The same bytes from a pipe as from the file.
        let piped = heft(
            &["clusters", "--raw"],
            Some(&std::fs::read(repo().join(input)).unwrap()),
        );
        assert!(piped.status.success());
        assert_eq!(piped.stdout, ok(&["clusters", "--raw", input]));
    }
}

#[test]
fn raw_honours_the_views_filters() {
    let out = ok(&[
        "clusters", "--raw", "--fqdn", "reviews", "--subset", "v2", SIDECAR,
    ]);
    let elements = raw_elements(&out);
    assert_eq!(elements.len(), 1);
    assert!(elements[0].contains("\"outbound|9080|v2|reviews.default.svc.cluster.local\""));
}

/// The value as data: numbers as floats (a `Struct` holds doubles, which printers write either
/// way) and keys in sorted order.
fn numbers_as_floats(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_floats).collect()),
        Value::Object(m) => {
            let sorted: std::collections::BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, numbers_as_floats(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn istioctl_json_matches_protobufs_own_json_printer_on_real_captures() {
    let Some(python) =
        oracle_python_of("istioctl_json_matches_protobufs_own_json_printer_on_real_captures")
    else {
        return;
    };
    let views = [
        "clusters",
        "listeners",
        "routes",
        "endpoints",
        "secrets",
        "bootstrap",
    ];
    for input in [SIDECAR, GATEWAY] {
        let out = Command::new(&python)
            .arg(repo().join("tests/oracle/istioctl_json.py"))
            .arg(repo().join(input))
            .args(views)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        for view in views {
            let want = numbers_as_floats(&all[view]);
            let got: Value =
                serde_json::from_slice(&ok(&[view, "--istioctl", "-o", "json", input])).unwrap();
            let got = numbers_as_floats(&got);
            match (&want, &got) {
                // istioctl sorts the list; the oracle keeps dump order.
                (Value::Array(w), Value::Array(g)) => {
                    let key = |v: &Value| v.to_string();
                    let mut w: Vec<String> = w.iter().map(key).collect();
                    let mut g: Vec<String> = g.iter().map(key).collect();
                    w.sort();
                    g.sort();
                    assert_eq!(g.len(), w.len(), "{view} {input}");
                    for (a, b) in g.iter().zip(&w) {
                        assert_eq!(a, b, "{view} {input}");
                    }
                }
                _ => assert_eq!(got, want, "{view} {input}"),
            }
        }
    }
}

#[test]
fn private_keys_in_a_dump_are_never_printed() {
    let dump = br#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
      "dynamic_active_secrets": [{"name": "leaky", "secret": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
        "name": "leaky",
        "tls_certificate": {"private_key": {"inline_string": "-----BEGIN PRIVATE KEY-----abc"}}}}]}]}"#;
    for args in [
        &["secrets", "--raw", "-"][..],
        &["secrets", "--istioctl", "-o", "json", "-"],
        &["secrets", "--istioctl", "-o", "yaml", "-"],
        &["secrets", "-o", "json", "-"],
    ] {
        let out = heft(args, Some(dump));
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.contains("PRIVATE KEY"),
            "{args:?} printed the key:\n{text}"
        );
    }
    let out = heft(&["secrets", "--raw", "-"], Some(dump));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[redacted]"));
}

/// Bad input or flags: one line on stderr saying what, exit code 2, nothing on stdout.
fn assert_clean_failure(out: &Output, expect: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(err.starts_with("heft: error: "), "{err}");
    assert!(err.contains(expect), "{err:?} should contain {expect:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_and_bad_flags_exit_2_with_one_line() {
    assert_clean_failure(
        &heft(&["clusters", "testdata/no-such-file.json"], None),
        "no-such-file.json",
    );
    assert_clean_failure(&heft(&["routes", "-"], Some(b"{\"configs\": [")), "<stdin>");
    assert_clean_failure(
        &heft(&["listeners", "--raw", "-"], Some(b"{\"configs\": [}")),
        "<stdin>",
    );
    assert_clean_failure(
        &heft(&["clusters", "--raw", "-o", "yaml", SIDECAR], None),
        "--raw",
    );
    assert_clean_failure(
        &heft(&["clusters", "--istioctl", "-o", "wide", SIDECAR], None),
        "wide",
    );
    assert_clean_failure(&heft(&["bootstrap", LIVE], None), "no bootstrap");
}

/// A usage error: clap's whole message on stderr under Heft's prefix, exit code 2, nothing on
/// stdout.
fn assert_usage_error(args: &[&str], expect: &[&str]) {
    let out = heft(args, None);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("heft: error: "), "{err}");
    for e in expect {
        assert!(err.contains(e), "{args:?}: {err:?} should contain {e:?}");
    }
}

#[test]
fn bad_flags_get_clap_s_whole_message() {
    assert_usage_error(
        &["clusters", "--port", "eighty", SIDECAR],
        &["'eighty' for '--port <PORT>'", "invalid digit"],
    );
    assert_usage_error(
        &["clusters", "-o", "xml", SIDECAR],
        &["'xml'", "[possible values: table, wide, json, yaml]"],
    );
    assert_usage_error(
        &["clusters", "--istioctl", "--raw", SIDECAR],
        &[
            "'--istioctl' cannot be used with '--raw'",
            "Usage: heft clusters",
        ],
    );
    assert_usage_error(
        &["listeners", "--verbose=maybe", SIDECAR],
        &["'maybe'", "[possible values: true, false]"],
    );
}

#[test]
fn binary_input_prints_raw_as_json_and_says_so() {
    // A binary ConfigDump holding one empty ClustersConfigDump.
    let type_url = b"type.googleapis.com/envoy.admin.v3.ClustersConfigDump";
    let mut any = vec![0x0a, type_url.len() as u8];
    any.extend_from_slice(type_url);
    let mut dump = vec![0x0a, any.len() as u8];
    dump.extend_from_slice(&any);
    assert!(heft(&["clusters", "-"], Some(&dump)).status.success());
    let out = heft(&["clusters", "--raw", "-"], Some(&dump));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[]\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "heft: note: the input is protobuf: resources are printed as JSON converted from it\n"
    );
}

/// Runs `heft` on a pseudo-terminal of `cols` columns (util-linux `script`).
fn on_terminal(args: &str, cols: u32, env: &str) -> String {
    let cmd = format!(
        "stty cols {cols} rows 40; {env} {} {args}",
        env!("CARGO_BIN_EXE_heft")
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (it provides the terminal for this test)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().replace('\r', "")
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn on_a_terminal_tables_fit_its_width_and_colour_unless_no_color() {
    let text = on_terminal(&format!("clusters {SIDECAR}"), 90, "");
    assert!(text.contains("\x1b[1m"), "bold headers on a terminal");
    for line in strip_ansi(&text).lines() {
        assert!(line.chars().count() <= 90, "{line:?}");
    }
    assert!(strip_ansi(&text).contains('…'), "the widest column is cut");
    let plain = on_terminal(&format!("clusters {SIDECAR}"), 90, "NO_COLOR=1");
    assert!(!plain.contains('\x1b'), "NO_COLOR: no colour");
    // istioctl's tables stay byte for byte, terminal or not.
    let istioctl = on_terminal(&format!("clusters --istioctl {SIDECAR}"), 90, "");
    assert_eq!(
        istioctl.as_bytes(),
        &ok(&["clusters", "--istioctl", SIDECAR])[..]
    );
}

/// A size as the tables print it (`29.4 KiB`), in bytes, and how far the rounding may be off.
fn parse_size(text: &str) -> (f64, f64) {
    let (number, unit) = text.rsplit_once(' ').unwrap_or_else(|| panic!("{text:?}"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("not a size in binary units: {text:?}"),
    };
    let slack = if unit == "B" { 0.0 } else { 0.05 * scale };
    (number.parse::<f64>().unwrap() * scale, slack)
}

/// The COST cell of each line of a table whose last column is COST (empty where the line has
/// none).
fn last_column_costs(table: &str) -> Vec<String> {
    let mut lines = table.lines();
    assert!(lines.next().unwrap().ends_with("COST"), "{table}");
    lines
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [.., n, u] if u.ends_with('B') && n.parse::<f64>().is_ok() => format!("{n} {u}"),
                _ => String::new(),
            }
        })
        .collect()
}

/// What `heft cost -o json --by kind` puts in one kind, in bytes.
fn cost_of_kind(input: &str, kind: &str) -> u64 {
    let v: Value = serde_json::from_slice(&ok(&["cost", "-o", "json", input])).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == kind)
        .and_then(|r| r["bytes"].as_u64())
        .unwrap_or_else(|| panic!("no {kind} row: {v}"))
}

#[test]
fn each_listener_shows_its_whole_cost_and_the_listeners_add_up_to_heft_cost() {
    for input in [SIDECAR, GATEWAY] {
        let rows: Value = serde_json::from_slice(&ok(&["listeners", "-o", "json", input])).unwrap();
        let rows = rows.as_array().unwrap();
        let costs: Vec<u64> = rows.iter().map(|r| r["cost"].as_u64().unwrap()).collect();
        assert_eq!(
            costs.iter().sum::<u64>(),
            cost_of_kind(input, "listener"),
            "{input}"
        );
        // One line per filter chain, the listener's cost on its first.
        for args in [
            &["listeners", input][..],
            &["listeners", "--verbose=false", input],
        ] {
            let table = String::from_utf8(ok(args)).unwrap();
            let shown: Vec<String> = last_column_costs(&table)
                .into_iter()
                .filter(|c| !c.is_empty())
                .collect();
            assert_eq!(
                shown.len(),
                rows.len(),
                "{args:?}: one cost per listener\n{table}"
            );
            for (text, bytes) in shown.iter().zip(&costs) {
                assert!(
                    *bytes > 1024,
                    "{input}: a listener costs more than 1 KiB: {bytes}"
                );
                let (printed, slack) = parse_size(text);
                assert!(
                    (printed - *bytes as f64).abs() <= slack,
                    "{args:?}: {text} for {bytes} bytes"
                );
            }
        }
    }
    // The real sidecar's listeners, by name: the costs are not all alike.
    let rows: Value = serde_json::from_slice(&ok(&["listeners", "-o", "json", SIDECAR])).unwrap();
    let cost = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["cost"].as_u64())
            .unwrap()
    };
    assert!(cost("virtualInbound") > cost("virtualOutbound"));
}

#[test]
fn route_configurations_show_their_whole_cost_once_and_add_up_to_heft_cost() {
    for input in [SIDECAR, GATEWAY] {
        let configs: Value =
            serde_json::from_slice(&ok(&["routes", "--verbose=false", "-o", "json", input]))
                .unwrap();
        let priced: Vec<u64> = configs
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["cost"].as_u64())
            .collect();
        assert_eq!(
            priced.iter().sum::<u64>(),
            cost_of_kind(input, "route_config"),
            "{input}"
        );
        let table = String::from_utf8(ok(&["routes", input])).unwrap();
        let shown = last_column_costs(&table)
            .into_iter()
            .filter(|c| !c.is_empty())
            .count();
        assert_eq!(
            shown,
            priced.len(),
            "{input}: one cost per priced configuration\n{table}"
        );
    }
    // The bootstrap's inline route configurations are priced in their listeners.
    let table = String::from_utf8(ok(&["routes", "--verbose=false", SIDECAR])).unwrap();
    assert_eq!(table.matches("in listener").count(), 4, "{table}");
}

/// The names `-o json` gives for a view under `--state STATE`, in order.
fn names_in_state(view: &str, state: &str, input: &str) -> Vec<String> {
    let rows: Value =
        serde_json::from_slice(&ok(&[view, "--state", state, "-o", "json", input])).unwrap();
    let key = match view {
        "endpoints" => "cluster",
        _ => "name",
    };
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn state_shows_only_the_resources_in_that_state_on_the_real_sidecar() {
    // testdata/README.md: what each push of the sidecar scenario left in which state.
    assert_eq!(
        names_in_state("clusters", "warming", SIDECAR),
        ["outbound|8080||checkout.shop.svc.cluster.local"]
    );
    assert_eq!(
        names_in_state("clusters", "static", SIDECAR),
        ["agent", "prometheus_stats", "sds-grpc", "xds-grpc"]
    );
    assert_eq!(names_in_state("clusters", "active", SIDECAR).len(), 30);
    assert_eq!(
        names_in_state("listeners", "draining", SIDECAR),
        ["0.0.0.0_27017"]
    );
    assert!(names_in_state("listeners", "warming", SIDECAR).is_empty());
    assert_eq!(
        names_in_state("secrets", "warming", SIDECAR),
        [
            "file-cert:/etc/certs/cert-chain.pem~/etc/certs/key.pem",
            "file-root:/etc/certs/root-cert.pem"
        ]
    );
    assert_eq!(
        names_in_state("secrets", "active", SIDECAR),
        ["default", "ROOTCA"]
    );
    // The states add up to the whole view.
    let all: Value = serde_json::from_slice(&ok(&["clusters", "-o", "json", SIDECAR])).unwrap();
    let by_state: usize = ["static", "active", "warming", "draining"]
        .iter()
        .map(|s| names_in_state("clusters", s, SIDECAR).len())
        .sum();
    assert_eq!(by_state, all.as_array().unwrap().len());
    // The table says which state it shows.
    let table = String::from_utf8(ok(&["clusters", "--state", "warming", SIDECAR])).unwrap();
    assert!(table.lines().next().unwrap().contains("STATE"), "{table}");
    assert!(table.lines().nth(1).unwrap().contains("warming"), "{table}");
    let wide =
        String::from_utf8(ok(&["routes", "--state", "static", "-o", "wide", SIDECAR])).unwrap();
    assert!(wide.lines().skip(1).all(|l| l.contains("static")), "{wide}");
}

#[test]
fn state_rejected_lists_what_envoy_refused_and_why() {
    // Push 3 added a listener on virtualOutbound's address: Envoy NACKed it, and the dump shows
    // the entry twice (with and without its name); push 2's NACKed cluster left nothing (Envoy
    // 1.40 gives clusters no error_state).
    let rows: Value = serde_json::from_slice(&ok(&[
        "listeners",
        "--state",
        "rejected",
        "-o",
        "json",
        SIDECAR,
    ]))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "127.0.0.1_15001");
    assert_eq!(rows[0]["kind"], "listener");
    assert_eq!(rows[0]["state"], Value::Null, "nothing of it was kept");
    assert!(rows[0]["details"]
        .as_str()
        .unwrap()
        .contains("has duplicate address '127.0.0.1:15001'"));
    assert!(rows[0]["last_update_attempt"]
        .as_str()
        .unwrap()
        .starts_with("20"));
    let table = String::from_utf8(ok(&["listeners", "--state", "rejected", SIDECAR])).unwrap();
    assert!(table.starts_with("NAME "), "{table}");
    assert!(table.contains("127.0.0.1_15001") && table.contains("duplicate address"));
    for view in ["clusters", "routes", "endpoints", "secrets"] {
        assert!(
            names_in_state(view, "rejected", SIDECAR).is_empty(),
            "{view}"
        );
        assert!(
            names_in_state(view, "rejected", GATEWAY).is_empty(),
            "{view}"
        );
    }
    assert!(names_in_state("listeners", "rejected", GATEWAY).is_empty());
    // --raw prints the rejected entry as the dump holds it, error_state and all.
    let raw = ok(&["listeners", "--state", "rejected", "--raw", SIDECAR]);
    let elements = raw_elements(&raw);
    assert_eq!(elements.len(), 1);
    let entry: Value = serde_json::from_str(&elements[0]).unwrap();
    assert_eq!(entry["name"], "127.0.0.1_15001");
    assert!(entry["error_state"]["failed_configuration"].is_object());
    // istioctl has no --state.
    let out = heft(
        &["listeners", "--state", "rejected", "--istioctl", SIDECAR],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
