//! The `heft` binary as users run it: files, pipes, output formats, exit codes.

mod common;

use common::*;

use std::process::Output;

#[test]
fn summary_json_has_the_documented_stable_fields() {
    let out = heft(&["summary", "-o", "json", SIDECAR], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for path in [
        "/clusters/total",
        "/clusters/by_state/static",
        "/clusters/by_state/active",
        "/clusters/by_state/warming",
        "/clusters/by_state/draining",
        "/listeners/total",
        "/route_configs/total",
        "/virtual_hosts",
        "/routes",
        "/endpoint_configs",
        "/endpoints/total",
        "/secrets/total",
    ] {
        assert!(
            v.pointer(path).is_some_and(|x| x.is_u64()),
            "missing {path}"
        );
    }
    assert_eq!(v["node"]["envoy_version"], "1.40.0");
}

#[test]
fn a_pipe_and_a_file_give_the_same_summary() {
    let text = std::fs::read(repo().join(GATEWAY)).unwrap();
    let from_file = heft(&["summary", "-o", "json", GATEWAY], None);
    let from_dash = heft(&["summary", "-o", "json", "-"], Some(&text));
    let from_pipe = heft(&["summary", "-o", "json"], Some(&text));
    assert!(from_file.status.success());
    assert_eq!(from_file.stdout, from_dash.stdout);
    assert_eq!(from_file.stdout, from_pipe.stdout);
}

#[test]
fn the_text_report_names_the_proxy_and_counts() {
    let out = heft(&["summary", SIDECAR], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("sidecar~127.0.0.1~productpage-v1-abc.default"),
        "{text}"
    );
    assert!(
        text.contains("\nEnvoy Version:       1.40.0/Clean/RELEASE/BoringSSL\n"),
        "{text}"
    );
    assert!(text.contains("Clusters"), "{text}");
}

/// Bad input: one line on stderr saying what and where, exit code 2, nothing on stdout.
fn assert_clean_failure(out: &Output, expect: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(err.starts_with("heft: error: "), "{err}");
    assert!(err.contains(expect), "{err:?} should contain {expect:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_exits_2_with_one_line_saying_what_and_where() {
    let text = std::fs::read(repo().join(GATEWAY)).unwrap();
    let truncated = &text[..text.len() / 2];
    assert_clean_failure(&heft(&["summary", "-"], Some(truncated)), "at byte");
    assert_clean_failure(&heft(&["summary", "-"], Some(b"")), "empty");
    assert_clean_failure(
        &heft(&["summary", "-"], Some(b"apiVersion: v1\nkind: Service\n")),
        "Kubernetes",
    );
    assert_clean_failure(
        &heft(&["summary", "testdata/real/gateway/stats.json"], None),
        "/stats",
    );
    assert_clean_failure(
        &heft(&["summary", "no/such/file.json"], None),
        "no/such/file.json",
    );
    let bomb = "[".repeat(200_000);
    assert_clean_failure(&heft(&["summary", "-"], Some(bomb.as_bytes())), "nesting");
    let mut bad_utf8 = text.clone();
    let at = text.windows(9).position(|w| w == b"\"configs\"").unwrap() + 3;
    bad_utf8[at] = 0xC0;
    assert_clean_failure(
        &heft(&["summary", "-"], Some(&bad_utf8)),
        &format!("at byte {at}"),
    );
}

#[test]
fn keep_going_reports_what_it_skipped_and_succeeds() {
    let text = String::from_utf8(std::fs::read(repo().join(GATEWAY)).unwrap()).unwrap();
    let at = text.find("\"dynamic_active_clusters\"").unwrap();
    let name = at + text[at..].find("\"name\": \"").unwrap() + "\"name\": ".len();
    let end = name + 1 + text[name + 1..].find('"').unwrap() + 1;
    let bad = format!("{}[]{}", &text[..name], &text[end..]);
    let strict = heft(&["summary", "-"], Some(bad.as_bytes()));
    assert_clean_failure(&strict, "dynamic_active_clusters[0].cluster.name");
    let lenient = heft(
        &["summary", "--keep-going", "-o", "json", "-"],
        Some(bad.as_bytes()),
    );
    assert!(lenient.status.success());
    let v: serde_json::Value = serde_json::from_slice(&lenient.stdout).unwrap();
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert!(stderr.contains("skipped 1 resource"), "{stderr}");
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn cost_json_rows_sum_to_total_bytes_for_every_rollup() {
    let mut totals = Vec::new();
    for by in ["kind", "namespace", "service", "cluster-type", "listener"] {
        let v = json_of(&heft(&["cost", "-o", "json", "--by", by, SIDECAR], None));
        let total = v["total_bytes"].as_u64().unwrap();
        let rows = v["rows"].as_array().unwrap();
        let sum: u64 = rows.iter().map(|r| r["bytes"].as_u64().unwrap()).sum();
        assert_eq!(sum, total, "--by {by}");
        assert_eq!(v["by"], by);
        assert!(rows.iter().any(|r| r["key"] == "(baseline)"));
        totals.push(total);
    }
    assert!(totals.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
    // `top` predicts the same heap, and its objects are the heaviest, in order.
    let top = json_of(&heft(&["top", "-o", "json", "-n", "5", SIDECAR], None));
    assert_eq!(top["total_bytes"].as_u64(), Some(totals[0]));
    let objects = top["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 5);
    let bytes: Vec<u64> = objects
        .iter()
        .map(|o| o["bytes"].as_u64().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{bytes:?}");
    for o in objects {
        let p = &o["parts"];
        let parts: u64 = ["config", "stats", "per_worker", "endpoints"]
            .iter()
            .map(|k| p[k].as_u64().unwrap())
            .sum();
        assert_eq!(parts, o["bytes"].as_u64().unwrap());
    }
}

#[test]
fn top_kind_lists_only_that_kind() {
    for kind in [
        "cluster",
        "listener",
        "route-config",
        "secret",
        "endpoint",
        "route",
    ] {
        let v = json_of(&heft(&["top", "-o", "json", "--kind", kind, GATEWAY], None));
        let objects = v["objects"].as_array().unwrap();
        assert!(!objects.is_empty(), "--kind {kind}");
        let want = kind.replace('-', "_");
        assert!(objects.iter().all(|o| o["kind"] == want.as_str()), "{kind}");
    }
    let out = heft(&["top", "--kind", "pods", GATEWAY], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kind"));
}

#[test]
fn concurrency_comes_from_the_flag_or_from_server_info() {
    let total = |args: &[&str]| {
        let mut all = vec!["cost", "-o", "json"];
        all.extend_from_slice(args);
        all.push(SIDECAR);
        let v = json_of(&heft(&all, None));
        (
            v["total_bytes"].as_u64().unwrap(),
            v["settings"]["concurrency"].as_u64().unwrap(),
        )
    };
    // The real capture's /server_info says 2, as the default does.
    let info = "testdata/real/sidecar/server_info.json";
    assert_eq!(total(&["--server-info", info]), total(&[]));
    assert_eq!(total(&[]).1, 2);
    let (four, c) = total(&["--concurrency", "4"]);
    assert_eq!(c, 4);
    assert!(four > total(&[]).0);
    // The flag wins over the file.
    assert_eq!(
        total(&["--server-info", info, "--concurrency", "4"]).0,
        four
    );
    // A file that is not /server_info is refused, saying which.
    let out = heft(&["cost", "--server-info", SIDECAR, SIDECAR], None);
    assert_clean_failure(&out, "server_info");
}

#[test]
fn the_text_reports_show_the_prediction_and_the_rows() {
    let out = heft(&["cost", "--by", "namespace", SIDECAR], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Predicted Envoy heap "), "{text}");
    assert!(text.contains("NAMESPACE") && text.contains("default") && text.contains("TOTAL"));
    let out = heft(&["top", "-n", "3", SIDECAR], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3 + 4, "{text}");
}

/// The three lines that open every report that prices a dump.
fn heap_header(text: &str) -> Vec<&str> {
    let at = text
        .find("Predicted Envoy heap ")
        .unwrap_or_else(|| panic!("no heap header in:\n{text}"));
    text[at..].lines().take(3).collect()
}

#[test]
fn every_report_gives_sizes_in_binary_units_and_one_heap_header() {
    let texts: Vec<(&str, String)> = ["summary", "why", "cost", "top"]
        .into_iter()
        .map(|cmd| {
            let out = heft(&[cmd, SIDECAR], None);
            assert!(out.status.success(), "{cmd}: {out:?}");
            (cmd, String::from_utf8(out.stdout).unwrap())
        })
        .collect();
    let total = json_of(&heft(&["cost", "-o", "json", SIDECAR], None))["total_bytes"]
        .as_u64()
        .unwrap();
    let mib = format!("{:.1} MiB", total as f64 / (1u64 << 20) as f64);
    let want = heap_header(&texts[0].1);
    assert!(want[0].contains(&format!("heap {mib} ")), "{want:?}");
    assert!(want[0].contains("Envoy's own baseline"), "{want:?}");
    assert!(
        want[1].starts_with("  model: Envoy 1.40.0; 2 workers"),
        "{want:?}"
    );
    assert!(
        want[2].starts_with("  (this is the heap in use"),
        "{want:?}"
    );
    for (cmd, text) in &texts {
        assert_eq!(heap_header(text), want, "{cmd}");
    }
    let mut views: Vec<(&str, String)> = texts;
    for view in ["clusters", "listeners", "routes", "endpoints", "secrets"] {
        views.push((
            view,
            String::from_utf8(heft(&[view, SIDECAR], None).stdout).unwrap(),
        ));
    }
    for (cmd, text) in &views {
        for decimal in [" kB", " MB", " GB"] {
            assert!(!text.contains(decimal), "{cmd} prints {decimal:?}:\n{text}");
        }
        assert!(text.contains("iB"), "{cmd} prints binary units:\n{text}");
    }
}

#[test]
fn summary_prices_the_dump_as_heft_cost_does() {
    // A model with distinct fractional coefficients, so any difference in pricing shows.
    let names: Vec<&str> = heft::cost::Feature::ALL.iter().map(|f| f.name()).collect();
    let coefficients: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.to_string(),
                serde_json::json!(57.3 * (i + 1) as f64 + 0.6),
            )
        })
        .collect();
    let model = serde_json::json!({
        "format": "heft-cost-model/1", "envoy_version": "test", "made_by": "cli.rs",
        "coefficients": coefficients, "fit": null,
    });
    let path = std::env::temp_dir().join(format!("heft-cli-model-{}.json", std::process::id()));
    std::fs::write(&path, model.to_string()).unwrap();
    let model = path.to_str().unwrap();
    for file in [SIDECAR, GATEWAY] {
        for flags in [
            &[][..],
            &["--concurrency", "4"],
            &["--stats-matcher", "istio"],
        ] {
            let run = |cmd: &str| {
                let mut args = vec![cmd, "-o", "json", "--model", model];
                args.extend_from_slice(flags);
                args.push(file);
                json_of(&heft(&args, None))
            };
            let summary = run("summary");
            let cost = run("cost");
            let total = summary["cost"]["total_bytes"].as_u64().unwrap();
            assert!(total > 0);
            assert_eq!(
                total,
                cost["total_bytes"].as_u64().unwrap(),
                "{file} {flags:?}"
            );
            let rows: u64 = summary["cost"]["by_kind"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["bytes"].as_u64().unwrap())
                .sum();
            let parts = &summary["cost"]["parts"];
            let parts: u64 = ["config", "stats", "per_worker", "endpoints"]
                .iter()
                .map(|p| parts[p].as_u64().unwrap())
                .sum();
            assert_eq!(rows, parts, "{file} {flags:?}: by_kind sums to parts");
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// A usage error's stderr, checked for what every usage error has: Heft's prefix, exit code 2,
/// nothing on stdout, more than the first line of clap's message.
fn usage_error(args: &[&str]) -> String {
    let out = heft(args, None);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("heft: error: "), "{err}");
    assert!(err.lines().count() > 1, "clap's whole message: {err}");
    err
}

#[test]
fn a_missing_argument_names_it_and_shows_the_usage_line() {
    let err = usage_error(&["trace", SIDECAR]);
    assert!(
        err.contains("the following required arguments were not provided:\n  --port <PORT>"),
        "{err}"
    );
    assert!(err.contains("Usage: heft trace --port <PORT>"), "{err}");
}

#[test]
fn a_misspelt_subcommand_gets_a_did_you_mean() {
    let err = usage_error(&["summery", SIDECAR]);
    assert!(err.contains("unrecognized subcommand 'summery'"), "{err}");
    assert!(
        err.contains("a similar subcommand exists: 'summary'"),
        "{err}"
    );
    assert!(err.contains("Usage: heft <COMMAND>"), "{err}");
}

#[test]
fn a_bad_value_lists_the_possible_values() {
    let err = usage_error(&["summary", "-o", "bogus", SIDECAR]);
    assert!(
        err.contains("invalid value 'bogus' for '--output <OUTPUT>'"),
        "{err}"
    );
    assert!(err.contains("[possible values: text, json]"), "{err}");
    let err = usage_error(&["cost", "--by", "pod", SIDECAR]);
    assert!(
        err.contains("[possible values: kind, namespace, service, cluster-type, listener]"),
        "{err}"
    );
}
