//! Compiles Heft's trimmed Envoy protos (`proto/` at the workspace root) into Rust types.
//!
//! protox parses the `.proto` files in-process (no system `protoc`); prost-build writes the code
//! into `OUT_DIR`, and `src/pb/mod.rs` includes it, so generated code never enters the source tree.

use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            proto_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "proto") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    proto_files(&root, &mut files);
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let descriptors = protox::compile(&files, [&root]).unwrap_or_else(|e| panic!("{e:?}"));
    prost_build::Config::new()
        // Protobuf maps carry no order; sorted maps make the model deterministic.
        .btree_map(["."])
        .include_file("envoy_protos.rs")
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating Rust from the protos: {e}"));
}
