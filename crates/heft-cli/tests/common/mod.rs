//! What the CLI tests share: running the `heft` binary from the repository root.

// Each test crate uses its own subset of these.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The bundled real captures (testdata/README.md).
pub const SIDECAR: &str = "testdata/real/sidecar/config_dump.json.gz";
pub const GATEWAY: &str = "testdata/real/gateway/config_dump.json";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `heft` with `args` in the repository root, feeding `stdin` when given.
pub fn heft(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heft"))
        .args(args)
        .current_dir(repo())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The child may stop reading early (bad input): a broken pipe here is fine.
        let _ = pipe.write_all(bytes);
    }
    child.wait_with_output().unwrap()
}
