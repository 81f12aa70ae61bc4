//! YAML scalars as JSON text: the YAML 1.2 core schema decides what a plain scalar is, quoted
//! scalars are strings, and what JSON cannot write (`.inf`, `.nan`) becomes proto3 JSON's strings.

use std::fmt::Write;

/// What a YAML scalar becomes in JSON.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A JSON number, as text.
    Number(String),
    /// A JSON string with this content.
    Str,
    /// A JSON string other than the scalar's own text (`"Infinity"`, `"NaN"`).
    Special(&'static str),
}

/// Resolves a plain (unquoted, untagged) scalar by the YAML 1.2 core schema.
pub(crate) fn plain(text: &str) -> Json {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Json::Null,
        "true" | "True" | "TRUE" => return Json::Bool(true),
        "false" | "False" | "FALSE" => return Json::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Json::Str;
    }
    int(text).or_else(|| float(text)).map_or(Json::Str, |j| j)
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+` as a JSON number; `None` if it is not one. An
/// octal or hexadecimal value too large for 128 bits stays a string.
pub(crate) fn int(text: &str) -> Option<Json> {
    for (prefix, radix) in [("0o", 8), ("0x", 16)] {
        if let Some(digits) = text.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            return Some(
                u128::from_str_radix(digits, radix)
                    .map_or(Json::Str, |v| Json::Number(v.to_string())),
            );
        }
    }
    let (negative, digits) = sign(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    if negative {
        out.push('-');
    }
    out.push_str(without_leading_zeros(digits));
    Some(Json::Number(out))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` as a JSON number, and the infinities
/// and NaN as proto3 JSON's strings; `None` if it is none of these.
pub(crate) fn float(text: &str) -> Option<Json> {
    let (negative, rest) = sign(text);
    match rest {
        ".inf" | ".Inf" | ".INF" => {
            return Some(Json::Special(if negative {
                "-Infinity"
            } else {
                "Infinity"
            }))
        }
        ".nan" | ".NaN" | ".NAN" if text == rest => return Some(Json::Special("NaN")),
        _ => {}
    }
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fraction_ok = fraction.is_none_or(digits);
    let has_digits = !whole.is_empty() || fraction.is_some_and(|f| !f.is_empty());
    if !digits(whole) || !fraction_ok || !has_digits {
        return None;
    }
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !exponent_ok {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 2);
    if negative {
        out.push('-');
    }
    out.push_str(if whole.is_empty() {
        "0"
    } else {
        without_leading_zeros(whole)
    });
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(if f.is_empty() { "0" } else { f });
    }
    if let Some(e) = exponent {
        out.push('e');
        out.push_str(e);
    }
    Some(Json::Number(out))
}

fn sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

fn without_leading_zeros(digits: &str) -> &str {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0"
    } else {
        trimmed
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            let mut u = String::new();
            let _ = write!(u, "\\u{:04x}", b);
            out.extend_from_slice(u.as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Json {
        Json::Number(s.into())
    }

    #[test]
    fn plain_scalars_resolve_by_the_core_schema() {
        assert_eq!(plain(""), Json::Null);
        assert_eq!(plain("~"), Json::Null);
        assert_eq!(plain("NULL"), Json::Null);
        assert_eq!(plain("True"), Json::Bool(true));
        assert_eq!(plain("false"), Json::Bool(false));
        assert_eq!(plain("15020"), num("15020"));
        assert_eq!(plain("-007"), num("-7"));
        assert_eq!(plain("+12"), num("12"));
        assert_eq!(plain("0o17"), num("15"));
        assert_eq!(plain("0x1F"), num("31"));
        assert_eq!(plain("1e5"), num("1e5"));
        assert_eq!(plain(".5"), num("0.5"));
        assert_eq!(plain("-1."), num("-1.0"));
        assert_eq!(plain("00.25E-3"), num("0.25e-3"));
        assert_eq!(plain(".inf"), Json::Special("Infinity"));
        assert_eq!(plain("-.Inf"), Json::Special("-Infinity"));
        assert_eq!(plain(".NaN"), Json::Special("NaN"));
    }

    #[test]
    fn what_yaml_1_1_read_as_values_stays_a_string_in_1_2() {
        for s in [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "1_000",
            "0b101",
            "+-5",
            "0x-1",
            "0o+1",
            "1:20",
            "2022-12-08",
            "-.nan",
            ".",
            "-",
            "1e",
            "1e+",
            "e5",
            "0x",
            "12abc",
            "1.2.3",
            "2022-12-08T09:07:09Z/10",
            "v1",
            "0o8",
        ] {
            assert_eq!(plain(s), Json::Str, "{s}");
        }
    }

    #[test]
    fn huge_octal_and_hex_stay_strings() {
        assert_eq!(plain(&format!("0x{}", "f".repeat(40))), Json::Str);
        let big = "9".repeat(60);
        assert_eq!(plain(&big), Json::Number(big.clone()));
    }

    #[test]
    fn strings_are_escaped_for_json() {
        let mut out = Vec::new();
        write_string(&mut out, "a\"b\\c\n\u{1}é\u{2028}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001é\u{2028}\""
        );
    }
}
