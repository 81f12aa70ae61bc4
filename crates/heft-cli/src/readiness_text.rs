//! What Envoy rejected and what it still waits for, as `summary` and `why` print it.

use heft::summary_types::{RejectedUpdate, Waiting};
use std::fmt::Write as _;

/// The longest rejection message printed whole: Envoy's can quote a whole resource.
const MESSAGE_CHARS: usize = 400;

/// Text from the dump as one safe line: control characters (a terminal's escape sequences,
/// newlines) shown as `\u{…}`, and cut at `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The two lists, each under a heading; nothing when both are empty.
pub fn render(rejected: &[RejectedUpdate], warming: &[Waiting]) -> String {
    let mut o = String::new();
    if !rejected.is_empty() {
        let _ = writeln!(
            o,
            "\nRejected by Envoy ({}; it keeps running the version it last accepted)",
            rejected.len()
        );
        for r in rejected {
            let name = if r.name.is_empty() {
                "(unnamed)".to_string()
            } else {
                one_line(&r.name, 200)
            };
            let when = r
                .when
                .as_deref()
                .map_or(String::new(), |w| format!(" at {}", one_line(w, 40)));
            let version = r
                .version
                .as_deref()
                .map_or(String::new(), |v| format!(" (version {})", one_line(v, 80)));
            let _ = writeln!(
                o,
                "  {} {name}{version}{when}: {}",
                r.kind,
                one_line(&r.message, MESSAGE_CHARS)
            );
        }
    }
    if !warming.is_empty() {
        let _ = writeln!(
            o,
            "\nWarming ({}; received, not in use until what it waits for arrives)",
            warming.len()
        );
        for w in warming {
            let _ = writeln!(
                o,
                "  {} {}: waits for {}",
                w.kind,
                one_line(&w.name, 200),
                if w.waits_for.is_empty() {
                    "nothing the dump shows".to_string()
                } else {
                    w.waits_for
                        .iter()
                        .map(|s| one_line(s, 200))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_the_dump_never_reach_the_terminal() {
        let line = one_line("bad \u{1b}]0;title\u{7} and \u{1b}[2J\nnext", 100);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("\\u{1b}"));
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
