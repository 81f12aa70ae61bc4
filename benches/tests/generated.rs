//! The dump generator against the real Envoy captures: same layout, same keys, and its three
//! forms read alike; and Heft's stream folds on dumps large enough for many batches.

#[path = "../../crates/heft/tests/common/mod.rs"]
mod common;

use common::{bytes, normalised, oracle_python_of, repo, Dribble, Order};
use heft::cost::stream::CostFold;
use heft::cost::{CostModel, Estimate, Feature, Settings};
use heft::stream;
use heft::summary_types::SummaryFold;
use heft::{Dump, ReadOptions, Summary};
use heft_bench::gen::{self, Form, Mesh};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn capture() -> PathBuf {
    repo().join("testdata/real/sidecar/config_dump.json.gz")
}

fn generate(mesh: Mesh, form: Form, pool: Option<&prost_reflect::DescriptorPool>) -> Vec<u8> {
    let mut out = Vec::new();
    gen::Dump::new(&capture(), mesh)
        .unwrap()
        .write(form, pool, &mut out)
        .unwrap();
    out
}

/// The Envoy descriptors, written by benches/descriptors.py into a temporary file (`who` keeps
/// tests running at once apart).
fn descriptors(python: &Path, who: &str) -> prost_reflect::DescriptorPool {
    let path = std::env::temp_dir().join(format!("heft-gen-desc-{who}-{}.pb", std::process::id()));
    let out = Command::new(python)
        .arg(repo().join("benches/descriptors.py"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = gen::load_descriptors(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    pool
}

#[test]
fn an_empty_mesh_is_the_real_capture_byte_for_byte() {
    assert_eq!(generate(Mesh::new(0), Form::Json, None), bytes(&capture()));
}

/// Every key path (array indices dropped) and the indentation of every line.
fn key_paths(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                out.insert(p.clone());
                key_paths(x, &p, out);
            }
        }
        Value::Array(a) => a
            .iter()
            .for_each(|x| key_paths(x, &format!("{path}[]"), out)),
        _ => {}
    }
}

#[test]
fn generated_dumps_have_the_keys_nesting_and_layout_of_real_captures() {
    let text = generate(Mesh::new(12), Form::Json, None);
    let dump: Value = serde_json::from_slice(&text).unwrap();
    let mut generated = BTreeSet::new();
    key_paths(&dump, "", &mut generated);
    let mut real = BTreeSet::new();
    for p in [
        capture(),
        repo().join("testdata/real/gateway/config_dump.json"),
    ] {
        key_paths(&serde_json::from_slice(&bytes(&p)).unwrap(), "", &mut real);
    }
    let foreign: Vec<_> = generated.difference(&real).collect();
    assert!(foreign.is_empty(), "keys no real capture has: {foreign:?}");
    // Layout: printed again as Envoy prints (one-space indentation, `"key": value`, a final
    // newline), the text is unchanged; the empty mesh shows that printer is Envoy's.
    let mut again = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    serde::Serialize::serialize(
        &dump,
        &mut serde_json::Serializer::with_formatter(&mut again, fmt),
    )
    .unwrap();
    again.push(b'\n');
    assert!(
        again == text,
        "the generated text is not laid out as Envoy prints"
    );
    // And it grew what it says: services, ports, subsets, TCP listeners.
    let d = Dump::from_slice(&text).unwrap();
    let real = Dump::from_slice(&bytes(&capture())).unwrap();
    // Per function: 9 service ports, 2 subsets on each of 2 TCP ports, 2 more every 4th.
    let per_function = 9 + 4;
    assert_eq!(
        d.clusters.len(),
        real.clusters.len() + 12 * per_function + 3 * 2
    );
    assert_eq!(
        d.endpoint_configs.len(),
        real.endpoint_configs.len() + 12 * per_function + 3 * 2
    );
    assert_eq!(d.listeners.len(), real.listeners.len() + 5 + 12 * 2);
    let vhosts =
        |d: &Dump| -> usize { d.route_configs.iter().map(|r| r.virtual_hosts.len()).sum() };
    // Per function 7 HTTP service ports; each of the 5 new route configs ends with `allow_any`.
    assert_eq!(vhosts(&d), vhosts(&real) + 12 * 7 + 5);
}

/// The path of the first difference between two values, with both sides there.
fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, av) in x {
                let bv = y.get(k).unwrap_or(&Value::Null);
                if let Some(d) = difference(av, bv, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: keys differ"))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (av, bv)) in x.iter().zip(y).enumerate() {
                if let Some(d) = difference(av, bv, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: {} vs {} elements", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

#[test]
fn the_camel_case_and_binary_forms_hold_the_same_dump() {
    let Some(python) = oracle_python_of("the_camel_case_and_binary_forms") else {
        return;
    };
    let pool = descriptors(&python, "forms");
    let mesh = Mesh::new(6);
    let json = generate(mesh, Form::Json, None);
    let camel = generate(mesh, Form::CamelJson, Some(&pool));
    let binary = generate(mesh, Form::Binary, Some(&pool));
    assert!(String::from_utf8_lossy(&camel).contains("\"dynamicActiveClusters\": ["));
    let want = normalised(
        Dump::from_slice(&json).unwrap(),
        Order::MapsUnordered,
        false,
    );
    let got = normalised(
        Dump::from_slice(&camel).unwrap(),
        Order::MapsUnordered,
        false,
    );
    assert_eq!(difference(&want, &got, ""), None, "camelCase");
    let from_binary = Dump::from_slice(&binary).unwrap();
    assert_eq!(from_binary.source.encoding, "protobuf");
    assert_eq!(
        difference(
            &want,
            &normalised(&from_binary, Order::MapsUnordered, false),
            ""
        ),
        None,
        "binary"
    );

    // Independently of Heft: Google's protobuf reads the binary form as the same message as its
    // own parse of the JSON form.
    let dir = std::env::temp_dir().join(format!("heft-gen-forms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dump.json"), &json).unwrap();
    std::fs::write(dir.join("dump.pb"), &binary).unwrap();
    let check = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import to_binary
to_binary.import_all_protos()
from google.protobuf import json_format
from envoy.admin.v3 import config_dump_pb2
a = json_format.Parse(open(sys.argv[2]).read(), config_dump_pb2.ConfigDump())
b = config_dump_pb2.ConfigDump()
b.ParseFromString(open(sys.argv[3], "rb").read())
da, db = json_format.MessageToDict(a), json_format.MessageToDict(b)
print("same" if da == db else "different")
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(check)
        .arg(repo().join("tests/oracle"))
        .arg(dir.join("dump.json"))
        .arg(dir.join("dump.pb"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "same");
}

/// A model whose coefficients all differ, so any pricing difference shows.
fn test_model() -> CostModel {
    let coefficients = Feature::ALL
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().to_string(), 31.7 * (i + 1) as f64 + 0.29))
        .collect();
    CostModel::new("test", "benches/tests", coefficients, None).unwrap()
}

#[test]
fn folds_over_many_batches_equal_the_collected_dump() {
    // About 8 MB: several batches per section, so merging in order is exercised.
    let Some(python) = oracle_python_of("folds_over_many_batches") else {
        return;
    };
    let pool = descriptors(&python, "folds");
    let model = test_model();
    let mesh = Mesh::new(72);
    for form in [Form::Json, Form::Binary] {
        let text = generate(mesh, form, Some(&pool));
        let dump = Dump::from_slice(&text).unwrap();
        assert!(dump.clusters.len() > 1000);
        let want = Summary::of(&dump);
        for settings in [
            Settings::default(),
            Settings {
                concurrency: 3,
                stats: Some(heft::cost::istio_stats_matcher()),
                ..Settings::default()
            },
        ] {
            let fold = (SummaryFold, CostFold::new(&model, &settings));
            let opts = ReadOptions::default();
            for (way, result) in [
                ("slice", stream::fold_slice(&text, &opts, &fold)),
                (
                    "pipe",
                    stream::fold_reader(Dribble(&text, 65_521), &opts, &fold),
                ),
            ] {
                let (outline, (counts, costs)) = result.unwrap();
                let what = format!("{form:?} {way} {settings:?}");
                assert_eq!(SummaryFold.finish(&outline, counts), want, "{what}");
                assert_eq!(
                    fold.1.finish(&costs),
                    Estimate::of(&dump, &model, &settings).totals(),
                    "{what}"
                );
            }
        }
    }
}
