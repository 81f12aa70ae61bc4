//! `gen-dump`: writes an Istio-shaped config dump of any size (see `heft_bench::gen`).
//!
//! Usage: gen-dump (--target-mb MB | --functions N) [--endpoints 3] [--form json|camel|binary]
//!                 [--descriptors benches/out/envoy-descriptors.pb] --out FILE
//!
//! `--form camel` and `--form binary` need the Envoy descriptors, written by
//! `.venv/oracle/bin/python benches/descriptors.py benches/out/envoy-descriptors.pb`.

use heft_bench::gen::{functions_for, load_descriptors, Dump, Form, Mesh};
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    if let Err(e) = run() {
        eprintln!("gen-dump: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut target_mb, mut functions, mut endpoints) = (None, None, 3usize);
    let (mut form, mut out, mut descriptors) = (Form::Json, None, None);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--target-mb" => target_mb = Some(value()?.parse::<f64>().map_err(|e| e.to_string())?),
            "--functions" => {
                functions = Some(value()?.parse::<usize>().map_err(|e| e.to_string())?)
            }
            "--endpoints" => endpoints = value()?.parse().map_err(|e| format!("{e}"))?,
            "--form" => {
                form = match value()?.as_str() {
                    "json" => Form::Json,
                    "camel" => Form::CamelJson,
                    "binary" => Form::Binary,
                    f => return Err(format!("unknown form {f}: json, camel or binary")),
                }
            }
            "--descriptors" => descriptors = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {a} (see the source for usage)")),
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let capture = root.join("testdata/real/sidecar/config_dump.json.gz");
    let out = out.ok_or("give --out FILE")?;
    let functions = match (functions, target_mb) {
        (Some(n), _) => n,
        (None, Some(mb)) => {
            functions_for(&capture, (mb * 1e6) as u64, endpoints).map_err(|e| e.to_string())?
        }
        (None, None) => return Err("give --target-mb or --functions".into()),
    };
    let pool = match form {
        Form::Json => None,
        _ => {
            let path = descriptors.unwrap_or_else(|| root.join("benches/out/envoy-descriptors.pb"));
            Some(load_descriptors(&path).map_err(|e| e.to_string())?)
        }
    };
    let mesh = Mesh {
        endpoints,
        ..Mesh::new(functions)
    };
    let dump = Dump::new(&capture, mesh).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(8 << 20, file);
    dump.write(form, pool.as_ref(), &mut w)
        .and_then(|()| w.flush())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "gen-dump: {functions} functions, {endpoints} endpoints per cluster: {:.1} MB -> {}",
        size as f64 / 1e6,
        out.display()
    );
    Ok(())
}
