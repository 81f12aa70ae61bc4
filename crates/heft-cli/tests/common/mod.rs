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

/// The oracle virtualenv's Python, or `None` when `scripts/setup.sh` has not made it: the test
/// says it skips, and fails instead when `HEFT_REQUIRE_ENVOY` is set (the README's test command
/// sets it: there, everything must run).
pub fn oracle_python_of(test: &str) -> Option<PathBuf> {
    let p = repo().join(".venv/oracle/bin/python");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("HEFT_REQUIRE_ENVOY").is_none(),
        "{test}: no {} (run scripts/setup.sh)",
        p.display()
    );
    eprintln!("{test}: skipped: no {} (run scripts/setup.sh)", p.display());
    None
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
