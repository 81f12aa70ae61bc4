//! Everything istioctl prints is input: the real captures re-encoded as istioctl prints them read
//! into the same model as the originals.
//!
//! `tests/oracle/istioctl_forms.py` re-encodes each capture with Google's protobuf library
//! (`json_format`, the official Envoy protos) and PyYAML: proto3 JSON with lowerCamelCase names,
//! YAML, enums as numbers, integers as strings, every default printed; the whole dump, each section
//! alone, and arrays of resources. None of it shares code with Heft.

mod common;

use common::*;
use heft::model::{Span, State};
use heft::{Dump, ErrorKind};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One converted input: its directory and each file's shape (`dump`, `section K`, `clusters`, …).
struct Converted {
    input: PathBuf,
    dir: PathBuf,
    files: BTreeMap<String, String>,
}

/// `None` (said) when the oracle virtualenv is missing.
fn convert(inputs: &[PathBuf], name: &str) -> Option<Vec<Converted>> {
    let python = oracle_python_of(name)?;
    let out = std::env::temp_dir().join(format!("heft-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let result = Command::new(python)
        .arg(repo().join("tests/oracle/istioctl_forms.py"))
        .arg(&out)
        .args(inputs)
        .output()
        .expect("the oracle python runs");
    assert!(
        result.status.success(),
        "istioctl_forms.py failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let text = String::from_utf8(result.stdout).unwrap();
    let lines: Vec<J> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), inputs.len(), "{text}");
    let converted = inputs
        .iter()
        .zip(lines)
        .map(|(input, line)| {
            let dir = line["dir"].as_str().unwrap_or_else(|| {
                panic!(
                    "{}: {}",
                    input.display(),
                    line["error"].as_str().unwrap_or("?")
                )
            });
            let files = line["files"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            Converted {
                input: input.clone(),
                dir: PathBuf::from(dir),
                files,
            }
        })
        .collect();
    Some(converted)
}

/// Compares two values, naming the differing elements (the first few) for a readable failure.
fn same(want: &J, got: &J, what: &str) -> Result<(), String> {
    fn diffs(a: &J, b: &J, path: String, out: &mut Vec<String>) {
        if a == b || out.len() >= 8 {
            return;
        }
        match (a, b) {
            (J::Object(x), J::Object(y)) => {
                for (k, av) in x {
                    diffs(av, y.get(k).unwrap_or(&J::Null), format!("{path}.{k}"), out);
                }
                for (k, bv) in y {
                    if !x.contains_key(k) {
                        diffs(&J::Null, bv, format!("{path}.{k}"), out);
                    }
                }
            }
            (J::Array(x), J::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    diffs(p, q, format!("{path}[{i}]"), out);
                }
            }
            (J::Array(x), J::Array(y)) => {
                out.push(format!("{path}: {} elements vs {}", x.len(), y.len()))
            }
            _ => out.push(format!("{path}: {a} vs {b}")),
        }
    }
    if want == got {
        return Ok(());
    }
    let mut out = Vec::new();
    diffs(want, got, String::new(), &mut out);
    Err(format!(
        "{what} differs (left original, right re-encoded) at\n    {}",
        out.join("\n    ")
    ))
}

fn read(path: &Path) -> Result<Dump, String> {
    Dump::from_path(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The original's resources that sat inside `span` (one section of the dump).
fn within(dump: &Dump, span: Span) -> Dump {
    let inside = |s: Option<Span>| {
        s.is_some_and(|s| s.offset >= span.offset && s.offset + s.len <= span.offset + span.len)
    };
    let mut d = dump.clone();
    d.bootstrap = d.bootstrap.filter(|b| inside(b.meta.span));
    d.clusters.retain(|x| inside(x.meta.span));
    d.listeners.retain(|x| inside(x.meta.span));
    d.route_configs.retain(|x| inside(x.meta.span));
    d.endpoint_configs.retain(|x| inside(x.meta.span));
    d.secrets.retain(|x| inside(x.meta.span));
    d.rejected.retain(|x| inside(x.meta.span));
    d.opaque
        .retain(|x| inside(x.meta.span) && x.meta.span != Some(span));
    d
}

/// The parts of a dump a section or resource-array form must reproduce.
fn parts(d: &Dump, order: Order, drop_meta: bool) -> J {
    let v = serde_json::json!({
        "bootstrap": d.bootstrap,
        "clusters": d.clusters,
        "listeners": d.listeners,
        "route_configs": d.route_configs,
        "endpoint_configs": d.endpoint_configs,
        "secrets": d.secrets,
        "rejected": d.rejected,
        "opaque": d.opaque,
        "cluster_statuses": d.cluster_statuses,
    });
    normalised(v, order, drop_meta)
}

/// The shapes that are arrays of resources.
const KINDS: [&str; 4] = ["clusters", "listeners", "routes", "endpoints"];

/// Checks one re-encoded file against the original it came from.
fn check_form(original: &Dump, file: &Path, shape: &str, what: &str) -> Result<(), String> {
    let got = read(file)?;
    let name = file.to_string_lossy();
    if name.ends_with(".yaml") {
        // Streamed (decoded as it arrives, spans included), YAML reads as it does mapped.
        let bytes = std::fs::read(file).unwrap();
        let streamed =
            Dump::from_reader(Dribble(&bytes, 4093)).map_err(|e| format!("{what}: {e}"))?;
        if streamed != got {
            return Err(format!("{what}: streamed YAML reads differently"));
        }
    }
    // json_format prints map entries in its own order; only the YAML of the original document
    // keeps the original's order, so it alone is compared order and all.
    let unordered = !name.contains(".original.");
    // istioctl's YAML has its keys sorted, which puts a document's sections and their arrays
    // in another order: `dynamicActiveClusters` comes before `staticClusters`.
    let order = if name.ends_with(".camel.yaml") && !KINDS.contains(&shape) {
        Order::Any
    } else if unordered {
        Order::MapsUnordered
    } else {
        Order::Exact
    };
    match shape {
        "dump" | "statuses" => {
            same(
                &normalised(original, order, false),
                &normalised(&got, order, false),
                what,
            )?;
        }
        s if s.starts_with("section ") => {
            let k: usize = s["section ".len()..].parse().unwrap();
            let section = &original.sections[k];
            let want = within(original, section.span);
            same(
                &parts(&want, order, false),
                &parts(&got, order, false),
                what,
            )?;
            let empty = parts(&want, order, false)
                .as_object()
                .unwrap()
                .values()
                .all(|v| v.is_null() || v == &J::Array(vec![]));
            let types: Vec<&str> = got.sections.iter().map(|s| &*s.type_url).collect();
            if !empty && types != [&*section.type_url] {
                return Err(format!(
                    "{what}: sections {types:?}, not {}",
                    section.type_url
                ));
            }
        }
        kind => {
            // Arrays of bare resources: no states or versions, so metadata is not compared.
            let mut want = Dump::from_slice(b"[]").unwrap();
            match kind {
                "clusters" => want.clusters = original.clusters.clone(),
                "listeners" => want.listeners = original.listeners.clone(),
                "routes" => want.route_configs = original.route_configs.clone(),
                "endpoints" => want.endpoint_configs = original.endpoint_configs.clone(),
                _ => panic!("unknown shape {kind}"),
            }
            same(&parts(&want, order, true), &parts(&got, order, true), what)?;
            let states: Vec<State> = got
                .clusters
                .iter()
                .map(|c| c.meta.state)
                .chain(got.listeners.iter().map(|l| l.meta.state))
                .collect();
            if !states.iter().all(|s| *s == State::Active) {
                return Err(format!("{what}: bare resources are active, not {states:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_istioctl_form_of_the_real_captures_reads_into_the_same_model() {
    let mut inputs = captures(&["config_dump.json"]);
    inputs.extend(captures(&["clusters.json"]));
    let Some(converted) = convert(&inputs, "istioctl-forms") else {
        return;
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for c in converted {
        let original = read(&c.input).unwrap();
        for (file, shape) in &c.files {
            let what = format!("{} as {file}", c.input.display());
            if let Err(e) = check_form(&original, &c.dir.join(file), shape, &what) {
                failures.push(e);
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} forms differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 40, "checked {checked} forms");
}

#[test]
fn an_error_deep_in_a_real_yaml_dump_names_its_line_and_column() {
    let inputs = captures(&["config_dump.json"]);
    let Some(converted) = convert(&inputs, "istioctl-yaml-errors") else {
        return;
    };
    for c in converted {
        let text = std::fs::read_to_string(c.dir.join("dump.camel.yaml")).unwrap();
        // The last port of the dump, far past the first blocks of recorded positions.
        let at = text.rfind("portValue: ").unwrap() + "portValue: ".len();
        let end = at + text[at..].find('\n').unwrap();
        let bad = format!("{}[oops]{}", &text[..at], &text[end..]);
        let want = place_of_offset(&bad, at);
        assert!(want.0 > 1000, "{want:?}");
        let e = yaml_error(bad.as_bytes());
        assert_eq!(e.kind(), ErrorKind::InvalidValue, "{e}");
        assert_eq!(e.line_column(), Some(want), "{}: {e}", c.input.display());
        assert!(e.path_string().ends_with(".portValue"), "{e}");
    }
}

/// The line and column of a byte offset, 1-based.
fn place_of_offset(text: &str, at: usize) -> (u64, u64) {
    let line = 1 + text[..at].matches('\n').count() as u64;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, 1 + text[line_start..at].chars().count() as u64)
}

#[test]
fn an_empty_section_reads_as_an_empty_dump() {
    // istioctl prints `{}` for a section with nothing in it (proto3 JSON of an empty message).
    for text in [&b"{}"[..], b"{}\n", b" {} "] {
        let dump = Dump::from_slice(text).unwrap();
        assert!(dump.clusters.is_empty() && dump.sections.is_empty());
        assert_eq!(dump.source.format, heft::model::DocumentKind::Section);
    }
}

// ---- istioctl's own fixtures ----

/// Every json or yaml file under `testdata/istioctl`.
fn fixture_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![fixtures()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json" || x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The port of an endpoint's socket address.
fn port(e: &heft::model::Endpoint) -> Option<u32> {
    match &e.address {
        Some(heft::model::Address::Socket { port, .. }) => Some(*port),
        _ => None,
    }
}

#[test]
fn every_istioctl_fixture_reads_and_agrees_with_its_source() {
    let files = fixture_files();
    assert!(files.len() >= 15, "{files:?}");
    for f in &files {
        read(f).unwrap();
    }
    let fx = fixtures();
    let cmp = |want: &Dump, got_path: &str, drop_meta: bool| {
        let got = read(&fx.join(got_path)).unwrap();
        let order = Order::MapsUnordered;
        same(
            &parts(want, order, drop_meta),
            &parts(&got, order, drop_meta),
            got_path,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        got
    };

    // `proxy-config bootstrap -o json` of configdump.json: the bootstrap section alone.
    let dump = read(&fx.join("configdump.json")).unwrap();
    assert!(dump.bootstrap.is_some());
    cmp(&dump, "bootstrapdump.json", false);

    // `proxy-config ecds -o json|yaml`: the ECDS section alone.
    let ecds = read(&fx.join("ecds/configdump.json")).unwrap();
    assert_eq!(ecds.opaque.len(), 6);
    for out in ["ecds/output.json", "ecds/output.yaml"] {
        let got = cmp(&ecds, out, false);
        assert_eq!(got.sections[0].type_url, ecds.sections[0].type_url, "{out}");
    }

    // `proxy-config endpoint -o json|yaml`, unfiltered and with `--port 8080`: arrays of the
    // dump's endpoint configs (keeping, with the filter, only the endpoints on that port).
    let source = read(&fx.join("endpoint/configdump.json")).unwrap();
    for (out, filter) in [
        ("endpoint/emptyfilter_output.json", None),
        ("endpoint/emptyfilter_output.yaml", None),
        ("endpoint/portfilter_output.json", Some(8080)),
        ("endpoint/portfilter_output.yaml", Some(8080)),
    ] {
        let got = read(&fx.join(out)).unwrap();
        let mut want = Dump::from_slice(b"[]").unwrap();
        for la in &got.endpoint_configs {
            let mut original = source
                .endpoint_configs
                .iter()
                .find(|x| x.cluster_name == la.cluster_name)
                .unwrap_or_else(|| panic!("{out}: {} is not in the source", la.cluster_name))
                .clone();
            if let Some(p) = filter {
                for l in &mut original.localities {
                    l.endpoints.retain(|e| port(e) == Some(p));
                }
                original.localities.retain(|l| !l.endpoints.is_empty());
            }
            want.endpoint_configs.push(original);
        }
        if filter.is_none() {
            // istioctl lists every endpoint config that has endpoints.
            let with_endpoints = source
                .endpoint_configs
                .iter()
                .filter(|la| !la.localities.is_empty())
                .count();
            assert_eq!(want.endpoint_configs.len(), with_endpoints, "{out}");
        }
        let order = Order::MapsUnordered;
        same(&parts(&want, order, true), &parts(&got, order, true), out)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

// ---- YAML: what JSON cannot hold, broken input, and where errors point ----

/// Reads `text` mapped and streamed; both must fail alike. Returns the error.
fn yaml_error(text: &[u8]) -> heft::Error {
    let mapped = Dump::from_slice(text).expect_err("mapped input should fail");
    let streamed = Dump::from_reader(Dribble(text, 7)).expect_err("streamed input should fail");
    assert_eq!(mapped.to_string(), streamed.to_string());
    assert_eq!(mapped.kind(), streamed.kind());
    mapped
}

/// The line and column of the first occurrence of `needle` in `text`, 1-based.
fn place_of(text: &str, needle: &str) -> (u64, u64) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the text"));
    place_of_offset(text, at)
}

const SMALL: &str = "\
configs:
- '@type': type.googleapis.com/envoy.admin.v3.ClustersConfigDump
  dynamicActiveClusters:
  - versionInfo: \"7\"
    cluster:
      '@type': type.googleapis.com/envoy.config.cluster.v3.Cluster
      name: outbound|9080||reviews.default.svc.cluster.local
      type: EDS
      connectTimeout: 0.250s
  - cluster:
      name: b
      type: 3
      connectTimeout: 10s
";

#[test]
fn a_small_yaml_dump_reads_with_yaml_1_2_scalars() {
    let dump = Dump::from_slice(SMALL.as_bytes()).unwrap();
    assert_eq!(dump.source.encoding, "yaml");
    assert_eq!(dump.source.bytes, SMALL.len() as u64);
    assert_eq!(dump.clusters.len(), 2);
    let c = &dump.clusters[0];
    assert_eq!(c.meta.version_info.as_deref(), Some("7"));
    assert_eq!(
        c.connect_timeout,
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(dump.clusters[1].discovery, heft::model::Discovery::Eds);
    assert!(c.meta.span.is_none(), "no spans into the translated text");
    // The section's span is its place in the YAML text.
    let s = dump.sections[0].span;
    assert_eq!(s.offset as usize, SMALL.find("'@type'").unwrap());
    assert_eq!((s.offset + s.len) as usize, SMALL.len());
    // Streamed, compressed, with Windows line ends, a byte order mark and explicit document
    // markers, it reads the same.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, SMALL.as_bytes()).unwrap();
    let zst = zstd::encode_all(SMALL.as_bytes(), 1).unwrap();
    let crlf = SMALL.replace('\n', "\r\n");
    let marked = format!("\u{feff}%YAML 1.2\n---\n{SMALL}...\n");
    let variants: Vec<(&str, Dump)> = vec![
        (
            "stream",
            Dump::from_reader(Dribble(SMALL.as_bytes(), 3)).unwrap(),
        ),
        ("gzip", Dump::from_slice(&gz.finish().unwrap()).unwrap()),
        ("zstd", Dump::from_reader(&zst[..]).unwrap()),
        ("crlf", Dump::from_slice(crlf.as_bytes()).unwrap()),
        ("marked", Dump::from_slice(marked.as_bytes()).unwrap()),
    ];
    for (what, d) in variants {
        assert_eq!(d.clusters, dump.clusters, "{what}");
        assert_eq!(d.source.encoding, "yaml", "{what}");
    }
}

#[test]
fn a_wrong_value_is_reported_at_its_yaml_line_and_column() {
    let text = SMALL.replace("connectTimeout: 10s", "connectTimeout: banana");
    let e = yaml_error(text.as_bytes());
    assert_eq!(e.kind(), ErrorKind::InvalidValue, "{e}");
    assert_eq!(e.line_column(), Some(place_of(&text, "banana")), "{e}");
    assert_eq!(e.offset(), None, "{e}");
    assert_eq!(
        e.path_string(),
        "configs[0].dynamic_active_clusters[1].cluster.connectTimeout"
    );
    // A plain 5 is a number by the YAML 1.2 core schema, where a string is wanted; quoted, it is
    // the string "5".
    let text = SMALL.replace("name: b", "name: 5");
    let e = yaml_error(text.as_bytes());
    assert_eq!(e.line_column(), Some(place_of(&text, "5\n")), "{e}");
    assert!(
        e.message().contains("expected a string, found a number"),
        "{e}"
    );
    let text = SMALL.replace("name: b", "name: \"5\"");
    assert_eq!(
        &*Dump::from_slice(text.as_bytes()).unwrap().clusters[1].name,
        "5"
    );
    // Under --keep-going the resource is skipped, and the skip says where.
    let text = SMALL.replace("name: b", "name: [b]");
    let opts = heft::ReadOptions {
        keep_going: true,
        ..Default::default()
    };
    let d = Dump::from_slice_with(text.as_bytes(), &opts).unwrap();
    assert_eq!(d.clusters.len(), 1);
    let (line, column) = place_of(&text, "[b]");
    assert_eq!(
        (d.skipped[0].line, d.skipped[0].column),
        (Some(line), Some(column))
    );
    assert_eq!(d.skipped[0].offset, None);
}

#[test]
fn what_json_cannot_hold_is_refused_where_it_is() {
    let cases: &[(&str, &str, ErrorKind, &str)] = &[
        (
            "a: &x {b: 1}\nc: *x\n",
            "*x",
            ErrorKind::InvalidValue,
            "alias",
        ),
        ("? [a, b]\n: 1\n", "[a, b]", ErrorKind::InvalidValue, "key"),
        ("- !custom x\n", "!custom", ErrorKind::InvalidValue, "tag"),
        ("- !!int abc\n", "!!int", ErrorKind::InvalidValue, "int"),
        (
            "- a: 1\n---\n- b: 2\n",
            "---",
            ErrorKind::InvalidValue,
            "second YAML document",
        ),
        (
            "just text\n",
            "just",
            ErrorKind::WrongDocument,
            "single value",
        ),
    ];
    for (text, at, kind, says) in cases {
        let e = yaml_error(text.as_bytes());
        assert_eq!(e.kind(), *kind, "{text:?}: {e}");
        assert_eq!(e.line_column(), Some(place_of(text, at)), "{text:?}: {e}");
        assert!(e.to_string().contains(says), "{text:?}: {e}");
    }
    // An alias bomb is refused at its first alias, before anything is expanded.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (i, c) in ('b'..='z').enumerate() {
        let prev = (b'a' + i as u8) as char;
        bomb.push_str(&format!(
            "{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    let e = yaml_error(bomb.as_bytes());
    assert_eq!(e.line_column(), Some(place_of(&bomb, "*a")), "{e}");
    // Anchors alone, empty documents, comments and the core schema's tags are fine.
    let fine = "# istioctl proxy-config cluster -o yaml\n---\n- &c name: a\n  type: !!str EDS\n  \
                connectTimeout: ! 1s\n---\n";
    let d = Dump::from_slice(fine.as_bytes()).unwrap();
    assert_eq!(d.clusters[0].discovery, heft::model::Discovery::Eds);
}

#[test]
fn broken_yaml_is_one_error_with_its_line_and_column() {
    let cases: &[(&str, &str, ErrorKind)] = &[
        ("configs:\n- a: [1, 2\n", "", ErrorKind::Syntax),
        ("configs:\n\t- a: 1\n", "- a", ErrorKind::Syntax),
        ("- name: \"open\n", "", ErrorKind::Syntax),
        ("a:\n  b: 1\n c: 2\n", "c: 2", ErrorKind::Syntax),
        ("- name: a\n  bad: b: c\n", "", ErrorKind::Syntax),
        ("configs:\n- name: \u{0}x\n", "", ErrorKind::Syntax),
    ];
    for (text, at, kind) in cases {
        let e = yaml_error(text.as_bytes());
        assert_eq!(e.kind(), *kind, "{text:?}: {e}");
        let place = e
            .line_column()
            .unwrap_or_else(|| panic!("{text:?}: no place: {e}"));
        if !at.is_empty() {
            assert_eq!(place, place_of(text, at), "{text:?}: {e}");
        }
        assert!(e.to_string().starts_with("at line "), "{e}");
    }
    // Invalid UTF-8 past the first line: the YAML reader names its place, mapped or streamed.
    let bad = b"configs:\n- name: caf\xe9\n";
    let e = yaml_error(bad);
    assert_eq!(e.kind(), ErrorKind::Utf8, "{e}");
    assert_eq!(e.line_column(), Some((2, 12)), "{e}");
    // A Kubernetes manifest (one or several documents) says what it is.
    for manifest in [
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n",
        "apiVersion: v1\nkind: Service\n---\napiVersion: apps/v1\nkind: Deployment\n",
    ] {
        let e = yaml_error(manifest.as_bytes());
        assert_eq!(e.kind(), ErrorKind::WrongDocument, "{e}");
        assert!(e.to_string().contains("Kubernetes manifest"), "{e}");
        assert_eq!(e.line_column(), Some((1, 1)), "{e}");
    }
    // Nothing but comments.
    let e = yaml_error(b"# nothing here\n");
    assert_eq!(e.kind(), ErrorKind::Empty, "{e}");
}

#[test]
fn deep_yaml_nesting_stops_at_the_limit_without_exhausting_anything() {
    // The YAML parser allows 255 levels of flow collections.
    let flow = format!("a: {}", "[".repeat(2_000_000));
    let e = yaml_error(flow.as_bytes());
    assert_eq!(e.kind(), ErrorKind::TooDeep, "{e}");
    assert_eq!(e.line_column(), Some((1, 4 + 255)), "{e}");
    // Block collections, as istioctl writes them, stop at the JSON reader's limit.
    let block: String = (0..600)
        .map(|i| format!("{}- a:\n", "  ".repeat(i)))
        .collect();
    let e = yaml_error(block.as_bytes());
    assert_eq!(e.kind(), ErrorKind::TooDeep, "{e}");
    // Two levels a line (a list, then a mapping): level 513 is the mapping on line 257.
    assert_eq!(e.line_column(), Some((257, 1 + 2 * 256 + 2)), "{e}");
}

/// A small generator of pseudo-random numbers (xorshift), so the fuzz cases are the same on every
/// run without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn mutated_and_truncated_yaml_never_panics_and_errors_say_where() {
    let text = SMALL.as_bytes();
    // Cut anywhere: an error with a place, or (YAML has no closing brackets) a shorter dump.
    for cut in (0..text.len()).step_by(2) {
        match Dump::from_slice(&text[..cut]) {
            Ok(d) => assert!(d.clusters.len() <= 2),
            Err(e) => assert!(
                e.line_column().is_some() || matches!(e.kind(), ErrorKind::Empty),
                "cut at {cut}: {e}"
            ),
        }
    }
    // Mutations with YAML's own punctuation, and stray bytes.
    const PIECES: [&[u8]; 16] = [
        b":", b"-", b" ", b"\n", b"\t", b"'", b"\"", b"[", b"]", b"{", b"}", b"&a ", b"*a", b"!!",
        b"#", b"\xff",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut t = text.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(t.len());
            match rng.below(3) {
                0 => {
                    t.remove(at);
                }
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    t.splice(at..at, piece.iter().copied());
                }
                _ => t[at] = PIECES[rng.below(PIECES.len())][0],
            }
        }
        let mapped = Dump::from_slice(&t);
        let streamed = Dump::from_reader(Dribble(&t, 1 + rng.below(9)));
        match (&mapped, &streamed) {
            (Ok(a), Ok(b)) => assert_eq!(a.clusters, b.clusters, "round {round}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string(), "round {round}");
                assert!(
                    a.line_column().is_some()
                        || a.offset().is_some()
                        || a.kind() == ErrorKind::Empty,
                    "round {round}: {a}"
                );
            }
            _ => panic!("round {round}: mapped {mapped:?} vs streamed {streamed:?}"),
        }
    }
}

#[test]
fn the_json_names_that_lose_an_underscore_are_all_known_to_the_reader() {
    // The reader turns lowerCamelCase back into field names by rule, with a table for the names
    // the rule cannot invert (`consecutive5xx` is `consecutive_5xx`). The table must list every
    // such field of the Envoy API, as xds-protos has it.
    let Some(python) = oracle_python_of("the_json_names_that_lose_an_underscore") else {
        return;
    };
    let out = Command::new(python)
        .arg(repo().join("tests/oracle/istioctl_forms.py"))
        .arg("--camel-exceptions")
        .output()
        .expect("the oracle python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    let source = std::fs::read_to_string(repo().join("crates/heft/src/json/parser.rs")).unwrap();
    let table = source
        .split_once("const DIGIT_NAMES")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("DIGIT_NAMES in parser.rs")
        .0;
    let mut got: Vec<(String, String)> = table
        .split("(\"")
        .skip(1)
        .map(|pair| {
            let mut parts = pair
                .split('"')
                .filter(|p| !p.trim().is_empty() && p.trim() != ",");
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    // And the one Heft reads works, in a cluster's outlier detection.
    let json = br#"[{"name": "c", "type": "EDS", "outlierDetection": {"consecutive5xx": 7}}]"#;
    let dump = Dump::from_slice(json).unwrap();
    let od = dump.clusters[0].outlier_detection.as_ref().unwrap();
    assert_eq!(od.consecutive_5xx, Some(7));
}

#[test]
fn struct_values_read_alike_whichever_way_they_are_printed() {
    // Envoy prints a Struct's integral numbers as `2`, json_format as `2.0`; keys are data and
    // keep their case; `null` is a value in a Struct, not an absent field.
    let forms: [&[u8]; 3] = [
        br#"{"bootstrap": {"node": {"id": "x", "metadata": {"PROXY_CONFIG": {"concurrency": 2, "drainDuration": "45s", "extra": null}, "LABELS": {"app": "a"}}}}}"#,
        br#"{"bootstrap": {"node": {"id": "x", "metadata": {"PROXY_CONFIG": {"concurrency": 2.0, "drainDuration": "45s", "extra": null}, "LABELS": {"app": "a"}}}}}"#,
        b"bootstrap:\n  node:\n    id: x\n    metadata:\n      LABELS: {app: a}\n      PROXY_CONFIG:\n        concurrency: 2.0\n        drainDuration: 45s\n        extra: ~\n",
    ];
    let metadata: Vec<J> = forms
        .iter()
        .map(|f| {
            let d = Dump::from_slice(f).unwrap();
            J::Object(d.bootstrap.unwrap().node.metadata)
        })
        .collect();
    let want = serde_json::json!({"PROXY_CONFIG": {"concurrency": 2, "drainDuration": "45s", "extra": null}, "LABELS": {"app": "a"}});
    for m in &metadata {
        assert_eq!(m, &want);
        assert!(m["PROXY_CONFIG"]["concurrency"].is_i64());
    }
}

#[test]
fn null_is_the_default_for_every_kind_of_field() {
    // proto3 JSON: `null` for a field means its default, exactly as if it were left out.
    let plain = br#"[{"name": "c", "type": "EDS", "circuitBreakers": {"thresholds": [{"maxConnections": 5}]},
        "outlierDetection": {"consecutive5xx": 3}}]"#;
    let nulls = br#"[{"name": "c", "type": "EDS", "altStatName": null, "lbPolicy": null, "connectTimeout": null,
        "circuitBreakers": {"thresholds": [{"maxConnections": 5, "maxRequests": null, "priority": null}]},
        "outlierDetection": {"consecutive5xx": 3, "interval": null}, "transportSocket": null,
        "transportSocketMatches": null, "metadata": null, "loadAssignment": null, "filters": null,
        "typedExtensionProtocolOptions": null}]"#;
    let yaml = b"- name: c\n  type: EDS\n  altStatName:\n  lbPolicy: ~\n  connectTimeout: null\n  \
        circuitBreakers:\n    thresholds:\n    - maxConnections: 5\n      maxRequests: null\n  \
        outlierDetection: {consecutive5xx: 3, interval: ~}\n  transportSocket:\n";
    let want = Dump::from_slice(plain).unwrap().clusters;
    assert_eq!(want[0].circuit_breakers[0].max_requests, None);
    for (what, text) in [("json", &nulls[..]), ("yaml", &yaml[..])] {
        let got = Dump::from_slice(text).unwrap().clusters;
        assert_eq!(
            normalised(&got, Order::Exact, false),
            normalised(&want, Order::Exact, false),
            "{what}"
        );
    }
    // And in the walk: a null section or bootstrap is an absent one.
    let d = Dump::from_slice(br#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamicActiveClusters": null, "staticClusters": [{"cluster": {"name": "s"}}]}], "bootstrap": null}"#).unwrap();
    assert_eq!(d.clusters.len(), 1);
    assert!(d.bootstrap.is_none());
}

#[test]
fn keep_going_over_broken_yaml_keeps_what_came_before_and_says_where_it_stopped() {
    let text = format!("{SMALL}  - cluster: {{name: c\n");
    let opts = heft::ReadOptions {
        keep_going: true,
        ..Default::default()
    };
    let d = Dump::from_slice_with(text.as_bytes(), &opts).unwrap();
    assert_eq!(d.clusters.len(), 2);
    let last = d.skipped.last().unwrap();
    assert!(
        last.reason.starts_with("reading stopped: invalid YAML"),
        "{last:?}"
    );
    assert_eq!(last.line, Some(15), "{last:?}");
    assert_eq!(last.offset, None);
}
