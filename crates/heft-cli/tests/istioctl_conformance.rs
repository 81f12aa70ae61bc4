//! `--istioctl` output against istioctl's own expected outputs: every fixture in
//! `testdata/istioctl` (istioctl's test inputs beside the outputs its tests expect).
//! Tables must match byte for byte; JSON and YAML must hold the same data.
//!
//! Every file of the fixture tree must be an input or an expected output this test checks: a new
//! fixture without a rule here fails the test rather than being skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/istioctl")
}

fn heft(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_heft"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "heft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Table,
    Json,
    Yaml,
}

fn parse(bytes: &[u8], format: Format, what: &str) -> serde_json::Value {
    let text = std::str::from_utf8(bytes).unwrap();
    match format {
        Format::Json => serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}")),
        Format::Yaml => yaml_serde::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}")),
        Format::Table => unreachable!(),
    }
}

/// The command that should print `expected`, from where it sits and how it is named.
fn rule(root: &Path, expected: &Path) -> Option<(Vec<String>, Format)> {
    let rel = expected.strip_prefix(root).unwrap();
    let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
    let file = *parts.last().unwrap();
    let format = match Path::new(file).extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("yaml") => Format::Yaml,
        Some("txt") | None => Format::Table,
        Some(_) => return None,
    };
    let dir = expected.parent().unwrap();
    let input = ["configdump.json", "config_dump.json"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())?;
    let mut args: Vec<String> = match parts[0] {
        "versionsummary.txt" | "bootstrapdump.json" => vec!["bootstrap".into()],
        "endpoint" => vec!["endpoints".into()],
        "routes" => vec!["routes".into()],
        "secret" => vec!["secrets".into()],
        "ecds" => vec!["ecds".into()],
        _ => return None,
    };
    args.push("--istioctl".into());
    match format {
        Format::Json => args.extend(["-o".into(), "json".into()]),
        Format::Yaml => args.extend(["-o".into(), "yaml".into()]),
        Format::Table => {}
    }
    if file.starts_with("portfilter") {
        args.extend(["--port".into(), "8080".into()]);
    } else if !(file.starts_with("emptyfilter") || file.starts_with("output")) && parts.len() > 1 {
        return None;
    }
    args.push(input.display().to_string());
    Some((args, format))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_istioctl_fixture_is_reproduced() {
    let root = fixtures();
    let mut all = Vec::new();
    files(&root, &mut all);
    all.sort();
    let mut checked = 0;
    let mut inputs = Vec::new();
    let mut used = std::collections::HashSet::new();
    for path in &all {
        let name = path.file_name().unwrap().to_str().unwrap();
        if matches!(name, "README.md" | "LICENSE") {
            continue;
        }
        let is_input = matches!(name, "configdump.json" | "config_dump.json");
        if is_input {
            inputs.push(path.clone());
            continue;
        }
        used.insert(path.parent().unwrap().to_path_buf());
        let (args, format) = rule(&root, path)
            .unwrap_or_else(|| panic!("no conformance rule for fixture {}", path.display()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let got = heft(&args);
        let want = std::fs::read(path).unwrap();
        let what = format!("heft {} vs {}", args.join(" "), path.display());
        match format {
            Format::Table => assert!(
                got == want,
                "{what}:\n--- heft\n{}--- istioctl\n{}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            ),
            _ => assert_eq!(
                parse(&got, format, &what),
                parse(&want, format, &what),
                "{what}"
            ),
        }
        checked += 1;
    }
    // Every input was used by some expected output.
    for input in &inputs {
        assert!(
            used.contains(input.parent().unwrap()),
            "input {} has no expected output",
            input.display()
        );
    }
    assert!(checked >= 16, "checked only {checked} fixtures");
}

#[test]
fn heft_summary_shows_istioctls_version_lines() {
    let root = fixtures();
    let want = std::fs::read_to_string(root.join("versionsummary.txt")).unwrap();
    let got = heft(&["summary", root.join("configdump.json").to_str().unwrap()]);
    let got = String::from_utf8(got).unwrap();
    assert!(got.contains(&want), "{got}\nshould contain\n{want}");
}

#[test]
fn camel_case_and_original_names_give_the_same_istioctl_tables() {
    // istioctl's own -o json output (lowerCamelCase) read back gives the same table as the
    // original dump.
    let root = fixtures();
    let dump = root.join("endpoint/configdump.json");
    let camel = heft(&[
        "endpoints",
        "--istioctl",
        "-o",
        "json",
        dump.to_str().unwrap(),
    ]);
    let tmp = std::env::temp_dir().join(format!("heft-camel-{}.json", std::process::id()));
    std::fs::write(&tmp, &camel).unwrap();
    assert_eq!(
        heft(&["endpoints", "--istioctl", tmp.to_str().unwrap()]),
        heft(&["endpoints", "--istioctl", dump.to_str().unwrap()])
    );
    let _ = std::fs::remove_file(tmp);
}
