//! What istioctl prints, piped or saved, through the `heft` binary: YAML and lowerCamelCase JSON
//! read like Envoy's own JSON; bad YAML is one error line with its line and column, exit code 2.

mod common;

use common::*;

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// istioctl's own `proxy-config endpoint` outputs (testdata/istioctl/README.md).
const ENDPOINTS_JSON: &str = "testdata/istioctl/endpoint/emptyfilter_output.json";
const ENDPOINTS_YAML: &str = "testdata/istioctl/endpoint/emptyfilter_output.yaml";

/// The summary, without the facts about the input's encoding, compression and size.
fn summary(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["input"]["encoding"] = serde_json::Value::Null;
    v["input"]["bytes"] = serde_json::Value::Null;
    v["input"]["compression"] = serde_json::Value::Null;
    v
}

#[test]
fn istioctl_yaml_from_a_file_or_a_pipe_summarises_like_its_json() {
    let json = summary(&heft(&["summary", "-o", "json", ENDPOINTS_JSON], None));
    assert_eq!(json["endpoint_configs"], 32, "{json}");
    let yaml = std::fs::read(repo().join(ENDPOINTS_YAML)).unwrap();
    let gz = gzip(&yaml);
    let runs = [
        heft(&["summary", "-o", "json", ENDPOINTS_YAML], None),
        heft(&["summary", "-o", "json", "-"], Some(&yaml)),
        heft(&["summary", "-o", "json"], Some(&yaml)),
        heft(&["summary", "-o", "json", "-"], Some(&gz)),
    ];
    for out in &runs {
        assert_eq!(summary(out), json);
    }
    let v: serde_json::Value = serde_json::from_slice(&runs[0].stdout).unwrap();
    assert_eq!(v["input"]["encoding"], "yaml");
    let text = heft(&["summary", ENDPOINTS_YAML], None);
    assert!(String::from_utf8_lossy(&text.stdout).contains("yaml"));
}

/// Gzip through the system's `gzip`, so the CLI test needs no compression crate.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Bad input: one line on stderr saying what and where, exit code 2, nothing on stdout.
fn assert_clean_failure(out: &Output, expect: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    assert!(err.starts_with("heft: error: <stdin>: "), "{err}");
    for e in expect {
        assert!(err.contains(e), "{err:?} should contain {e:?}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_yaml_exits_2_with_one_line_naming_its_line_and_column() {
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"configs:\n- a: [1, 2\n",
            &["at line 3, column 1", "invalid YAML"],
        ),
        (b"configs:\n\t- a: 1\n", &["at line 2, column 2", "tabs"]),
        (b"a: &x [1]\nb: *x\n", &["at line 2, column 4", "alias"]),
        (
            b"- name: a\n  connectTimeout: soon\n",
            &["at line 2, column 19", "[0].connectTimeout", "duration"],
        ),
        (
            b"apiVersion: v1\nkind: ConfigMap\n",
            &["at line 1, column 1", "Kubernetes manifest"],
        ),
        (
            b"configs:\n- name: caf\xe9\n",
            &["at line 2, column 12", "UTF-8"],
        ),
        (
            b"- a: 1\n---\n- b: 2\n",
            &["at line 2, column 1", "second YAML document"],
        ),
    ];
    for (input, expect) in cases {
        assert_clean_failure(&heft(&["summary", "-"], Some(input)), expect);
    }
    let deep = format!("a: {}", "[".repeat(100_000));
    assert_clean_failure(&heft(&["summary", "-"], Some(deep.as_bytes())), &["nested"]);
}

#[test]
fn keep_going_on_yaml_says_where_the_skipped_resource_is() {
    let yaml = b"- name: a\n  type: EDS\n- name: [b]\n  type: EDS\n";
    let out = heft(&["summary", "--keep-going", "-o", "json", "-"], Some(yaml));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clusters"]["total"], 1);
    assert_eq!(v["skipped"][0]["line"], 3);
    assert_eq!(v["skipped"][0]["column"], 9);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at line 3, column 9, [1].name"), "{stderr}");
}
