//! `heft completions` and `heft man`: generated from the clap definition the parser uses, so
//! every subcommand and flag a user can type is in them.

mod common;

use common::*;

/// Every subcommand `heft --help` lists (but `help`).
fn subcommands() -> Vec<String> {
    let out = heft(&["--help"], None);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let list = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no command list in:\n{help}"));
    let names: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    for want in [
        "summary",
        "why",
        "sidecar",
        "clusters",
        "listeners",
        "completions",
        "man",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    names
}

fn stdout_of(args: &[&str]) -> String {
    let out = heft(args, None);
    assert!(
        out.status.success(),
        "heft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_for_each_shell_offer_every_subcommand_and_the_view_flags() {
    let names = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for name in &names {
            assert!(script.contains(name.as_str()), "{shell}: no {name}");
        }
        for flag in ["istioctl", "raw", "state", "keep-going", "concurrency"] {
            assert!(script.contains(flag), "{shell}: no --{flag}");
        }
    }
    // Each in its shell's own form.
    assert!(stdout_of(&["completions", "bash"]).contains("complete -F _heft"));
    assert!(stdout_of(&["completions", "zsh"]).starts_with("#compdef heft"));
    assert!(stdout_of(&["completions", "fish"]).contains("complete -c heft"));
    let out = heft(&["completions", "tcsh"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[test]
fn the_man_page_lists_every_subcommand_and_pages_are_written_for_each() {
    let names = subcommands();
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH heft 1"), "{page}");
    assert!(page.contains("Reads Envoy configuration dumps"), "{page}");
    for name in &names {
        assert!(
            page.contains(&format!("heft\\-{name}(1)")),
            "no {name} in:\n{page}"
        );
    }
    let dir = std::env::temp_dir().join(format!("heft-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    stdout_of(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(dir.join("heft.1")).unwrap(), page);
    for name in &names {
        let sub = std::fs::read_to_string(dir.join(format!("heft-{name}.1")))
            .unwrap_or_else(|e| panic!("heft-{name}.1: {e}"));
        assert!(sub.contains(&format!(".TH heft-{name} 1")), "{sub}");
    }
    let listeners = std::fs::read_to_string(dir.join("heft-listeners.1")).unwrap();
    assert!(listeners.contains("\\-\\-istioctl"), "{listeners}");
    let _ = std::fs::remove_dir_all(&dir);
}
