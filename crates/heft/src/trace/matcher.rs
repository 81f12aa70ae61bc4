//! Envoy's string, header, query-parameter and path rules, evaluated on one request.
//!
//! Each rule answers [`Check`]: it holds, it fails (with the reason a user reads), or Heft cannot
//! tell (a regex Rust cannot compile, a custom string matcher). Semantics follow Envoy 1.40's
//! `Http::HeaderUtility`, `Router::ConfigUtility::QueryParameterMatcher`, `Matchers::PathMatcher`
//! and the route entry classes of `source/common/router/config_impl.cc`.

use crate::model::{HeaderMatch, PathMatch, QueryParameterMatch, RouteMatch, StringMatch};
use regex::Regex;

/// The result of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// The rule holds.
    Holds,
    /// The rule fails, and why.
    Fails(String),
    /// Heft cannot evaluate the rule, and why.
    Unknown(String),
}

impl Check {
    fn from_bool(ok: bool, why: impl FnOnce() -> String) -> Check {
        if ok {
            Check::Holds
        } else {
            Check::Fails(why())
        }
    }
}

/// The request as the router sees it: pseudo-headers and headers, names lower-cased, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Headers {
    pub(crate) entries: Vec<(String, String)>,
}

impl Headers {
    /// Every value of `name`, one per header line, in order.
    pub(crate) fn values(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `name`.
    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.values(name).first().copied()
    }
}

/// RE2's Perl classes are ASCII-only; Rust's `regex` makes them Unicode-aware. Rewriting them as
/// explicit ASCII classes gives RE2's answers. Inside a bracket class the negated forms
/// (`[\D]`, `[\W]`, `[\S]`) stay Unicode-aware: they differ from RE2 only on non-ASCII input.
/// RE2's `\Q…\E` quoting, which Rust lacks, becomes escaped literals.
fn translate_re2(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let class = match (e, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('D', false) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some("[\\t\\n\\f\\r ]"),
                    ('S', false) => Some("[^\\t\\n\\f\\r ]"),
                    ('b', false) => Some("(?-u:\\b)"),
                    ('B', false) => Some("(?-u:\\B)"),
                    ('d', true) => Some("0-9"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('s', true) => Some("\\t\\n\\f\\r "),
                    _ => None,
                };
                if let Some(class) = class {
                    out.push_str(class);
                } else if e == 'Q' && !in_class {
                    let mut literal = String::new();
                    while let Some(q) = chars.next() {
                        if q == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        literal.push(q);
                    }
                    out.push_str(&regex::escape(&literal));
                } else {
                    out.push('\\');
                    out.push(e);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` (or `^]`) right after the opening bracket is a literal, not the end.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class `[:alpha:]` inside a bracket class: copy it whole.
                out.push('[');
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Compiles an RE2 pattern for a full match (Envoy's `RE2::FullMatch`).
pub(crate) fn compile_full(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{})$", translate_re2(pattern)))
        .map_err(|e| format!("regex {pattern:?} does not compile in Rust's regex engine: {e}"))
}

/// Whether `value` fully matches the RE2 `pattern`.
pub(crate) fn regex_full_match(pattern: &str, value: &str) -> Result<bool, String> {
    compile_full(pattern).map(|r| r.is_match(value))
}

fn starts_with(value: &str, prefix: &str, ignore_case: bool) -> bool {
    value.len() >= prefix.len()
        && value.is_char_boundary(prefix.len())
        && if ignore_case {
            value[..prefix.len()].eq_ignore_ascii_case(prefix)
        } else {
            value.starts_with(prefix)
        }
}

fn ends_with(value: &str, suffix: &str, ignore_case: bool) -> bool {
    let Some(start) = value.len().checked_sub(suffix.len()) else {
        return false;
    };
    value.is_char_boundary(start)
        && if ignore_case {
            value[start..].eq_ignore_ascii_case(suffix)
        } else {
            value.ends_with(suffix)
        }
}

/// Envoy's `StringMatcher` on one value (`absl` ASCII case folding for `ignore_case`; regexes
/// ignore it).
pub(crate) fn string_match(rule: &StringMatch, value: &str, ignore_case: bool) -> Check {
    let shown = |what: &str, want: &str| {
        let case = if ignore_case { " (ignoring case)" } else { "" };
        format!("{value:?} {what} {want:?}{case}")
    };
    match rule {
        StringMatch::Exact(want) => {
            let ok = if ignore_case {
                value.eq_ignore_ascii_case(want)
            } else {
                value == &**want
            };
            Check::from_bool(ok, || shown("is not", want))
        }
        StringMatch::Prefix(want) => {
            Check::from_bool(starts_with(value, want, ignore_case), || {
                shown("does not start with", want)
            })
        }
        StringMatch::Suffix(want) => Check::from_bool(ends_with(value, want, ignore_case), || {
            shown("does not end with", want)
        }),
        StringMatch::Contains(want) => {
            let ok = if ignore_case {
                value
                    .to_ascii_lowercase()
                    .contains(&want.to_ascii_lowercase())
            } else {
                value.contains(&**want)
            };
            Check::from_bool(ok, || shown("does not contain", want))
        }
        StringMatch::Regex(pattern) => match regex_full_match(pattern, value) {
            Ok(ok) => {
                Check::from_bool(ok, || format!("{value:?} does not match regex {pattern:?}"))
            }
            Err(e) => Check::Unknown(e),
        },
        StringMatch::Range(start, end) => {
            // absl::SimpleAtoi: surrounding ASCII whitespace and a leading `+` are accepted.
            let text = value.trim_matches(|c: char| c.is_ascii_whitespace());
            let parsed = text.strip_prefix('+').unwrap_or(text).parse::<i64>();
            match parsed {
                Ok(n) => Check::from_bool(n >= *start && n < *end, || {
                    format!("{n} is outside [{start}, {end})")
                }),
                Err(_) => Check::Fails(format!("{value:?} is not an integer in [{start}, {end})")),
            }
        }
        StringMatch::Present(_) => Check::Holds,
        StringMatch::Other => {
            Check::Unknown("a string matcher Heft does not model (custom extension)".into())
        }
    }
}

/// One `HeaderMatcher` on the request's headers.
///
/// A header sent on several lines is matched value by value: the rule holds when any value
/// matches, and an inverted rule when none does. Envoy 1.40 does this (observed on the real
/// binary: with `x-a: 1` and `x-a: 2`, `exact: "1"` and `exact: "2"` both match, `exact: "1,2"`
/// does not); the API docs still describe a comma-joined value. One value containing commas is
/// not split.
pub(crate) fn header(rule: &HeaderMatch, headers: &Headers) -> Check {
    let name = rule.name.to_ascii_lowercase();
    let mut values = headers.values(&name);
    if let StringMatch::Present(want) = rule.rule {
        // Presence ignores `treat_missing_header_as_empty`; `invert_match` flips it.
        let present = !values.is_empty();
        let wanted = want != rule.invert;
        return Check::from_bool(present == wanted, || {
            let word = |p: bool| if p { "present" } else { "absent" };
            format!(
                "header {name} is {}, the rule wants it {}",
                word(present),
                word(wanted)
            )
        });
    }
    if values.is_empty() {
        if rule.treat_missing_header_as_empty {
            values.push("");
        } else {
            return Check::Fails(format!(
                "header {name} is absent (an absent header never matches a value rule{})",
                if rule.invert { ", inverted or not" } else { "" }
            ));
        }
    }
    let mut failures = Vec::new();
    let mut unknown = None;
    let mut matched = None;
    for v in &values {
        // The deprecated `exact_match: ""` matches any value; `string_match` reads the same in
        // the model, so an empty exact value is taken as "any".
        let check = match &rule.rule {
            StringMatch::Exact(want) if want.is_empty() => Check::Holds,
            r => string_match(r, v, rule.ignore_case),
        };
        match check {
            Check::Holds => {
                matched = Some(*v);
                break;
            }
            Check::Fails(why) => failures.push(why),
            Check::Unknown(why) => unknown = Some(why),
        }
    }
    match (matched, rule.invert) {
        (Some(v), true) => Check::Fails(format!(
            "header {name}: {v:?} matches, and the rule is inverted"
        )),
        (Some(_), false) => Check::Holds,
        (None, _) if unknown.is_some() => {
            Check::Unknown(format!("header {name}: {}", unknown.unwrap_or_default()))
        }
        (None, true) => Check::Holds,
        (None, false) => Check::Fails(format!("header {name}: {}", failures.join("; "))),
    }
}

/// The query string of a `:path`, split as Envoy's `QueryParamsMulti::parseQueryString` does
/// (no percent-decoding; a parameter without `=` has an empty value).
pub(crate) fn query_parameters(path: &str) -> Vec<(String, String)> {
    let Some(start) = path.find('?') else {
        return Vec::new();
    };
    let query = &path[start + 1..];
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

/// One `QueryParameterMatcher`; only the first value of a repeated parameter counts.
pub(crate) fn query_parameter(rule: &QueryParameterMatch, params: &[(String, String)]) -> Check {
    let value = params
        .iter()
        .find(|(k, _)| *k == *rule.name)
        .map(|(_, v)| v.as_str());
    let name = &rule.name;
    match (&rule.rule, value) {
        (StringMatch::Present(want), v) => Check::from_bool(v.is_some() == *want, || {
            if v.is_some() {
                format!("query parameter {name} is present, the route wants it absent")
            } else {
                format!("query parameter {name} is absent")
            }
        }),
        (_, None) => Check::Fails(format!("query parameter {name} is absent")),
        (r, Some(v)) => match string_match(r, v, rule.ignore_case) {
            Check::Fails(why) => Check::Fails(format!("query parameter {name}: {why}")),
            other => other,
        },
    }
}

/// `:path` without its query and fragment (`Http::PathUtil::removeQueryAndFragment`).
pub(crate) fn path_only(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// Cuts `;parameters` when the route configuration asks for it
/// (`ignore_path_parameters_in_path_matching`).
fn sanitize(path: &str, ignore_path_parameters: bool) -> &str {
    if ignore_path_parameters {
        path.find(';').map_or(path, |i| &path[..i])
    } else {
        path
    }
}

/// The route's path rule on `:path` (and `:method`, for CONNECT).
pub(crate) fn path(
    m: &RouteMatch,
    full_path: &str,
    method: &str,
    ignore_path_parameters: bool,
) -> Check {
    let ignore_case = m.case_sensitive == Some(false);
    let case = if ignore_case { " (ignoring case)" } else { "" };
    match &m.path {
        PathMatch::Prefix(p) => {
            let path = path_only(sanitize(full_path, ignore_path_parameters));
            Check::from_bool(starts_with(path, p, ignore_case), || {
                format!("path {path:?} does not start with {p:?}{case}")
            })
        }
        PathMatch::Path(p) => {
            let path = path_only(sanitize(full_path, ignore_path_parameters));
            let ok = if ignore_case {
                path.eq_ignore_ascii_case(p)
            } else {
                path == &**p
            };
            Check::from_bool(ok, || format!("path {path:?} is not {p:?}{case}"))
        }
        PathMatch::SafeRegex(r) => {
            let path = path_only(sanitize(full_path, ignore_path_parameters));
            match regex_full_match(r, path) {
                Ok(ok) => Check::from_bool(ok, || {
                    format!("path {path:?} does not fully match regex {r:?}")
                }),
                Err(e) => Check::Unknown(e),
            }
        }
        PathMatch::PathSeparatedPrefix(p) => {
            let path = sanitize(path_only(full_path), ignore_path_parameters);
            let ok = starts_with(path, p, ignore_case)
                && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/');
            Check::from_bool(ok, || {
                format!("path {path:?} is not {p:?} nor under {p:?}/{case}")
            })
        }
        PathMatch::Connect => Check::from_bool(method.eq_ignore_ascii_case("CONNECT"), || {
            format!("method {method} is not CONNECT (connect_matcher)")
        }),
        PathMatch::PathMatchPolicy(o) => Check::Unknown(format!(
            "path_match_policy {} (an extension Heft keeps opaque)",
            o.type_url
        )),
        PathMatch::Any => Check::Holds,
    }
}

/// Whether the request is gRPC: `content-type` is `application/grpc` or `application/grpc+…`.
pub(crate) fn is_grpc(headers: &Headers) -> bool {
    const GRPC: &str = "application/grpc";
    headers.first("content-type").is_some_and(|c| {
        c.starts_with(GRPC) && (c.len() == GRPC.len() || c[GRPC.len()..].starts_with('+'))
    })
}

/// A one-line description of a route's match, for reports.
pub(crate) fn describe(m: &RouteMatch) -> String {
    let mut parts = vec![match &m.path {
        PathMatch::Prefix(p) => format!("prefix {p}"),
        PathMatch::Path(p) => format!("path {p}"),
        PathMatch::SafeRegex(r) => format!("regex {r}"),
        PathMatch::PathSeparatedPrefix(p) => format!("path_separated_prefix {p}"),
        PathMatch::PathMatchPolicy(o) => format!("path_match_policy {}", o.type_url),
        PathMatch::Connect => "CONNECT".into(),
        PathMatch::Any => "any path".into(),
    }];
    if m.case_sensitive == Some(false) {
        parts.push("case-insensitive".into());
    }
    for h in &m.headers {
        let not = if h.invert { "not " } else { "" };
        let rule = match &h.rule {
            StringMatch::Exact(v) => format!("= {v:?}"),
            StringMatch::Prefix(v) => format!("starts with {v:?}"),
            StringMatch::Suffix(v) => format!("ends with {v:?}"),
            StringMatch::Contains(v) => format!("contains {v:?}"),
            StringMatch::Regex(v) => format!("~ {v:?}"),
            StringMatch::Present(true) => "present".into(),
            StringMatch::Present(false) => "absent".into(),
            StringMatch::Range(a, b) => format!("in [{a}, {b})"),
            StringMatch::Other => "custom".into(),
        };
        parts.push(format!("header {} {not}{rule}", h.name));
    }
    for q in &m.query_parameters {
        let rule = match &q.rule {
            StringMatch::Exact(v) => format!("= {v:?}"),
            StringMatch::Prefix(v) => format!("starts with {v:?}"),
            StringMatch::Suffix(v) => format!("ends with {v:?}"),
            StringMatch::Contains(v) => format!("contains {v:?}"),
            StringMatch::Regex(v) => format!("~ {v:?}"),
            StringMatch::Present(true) => "present".into(),
            StringMatch::Present(false) => "absent".into(),
            _ => "custom".into(),
        };
        parts.push(format!("query {} {rule}", q.name));
    }
    if m.grpc {
        parts.push("gRPC only".into());
    }
    if m.runtime_fraction {
        parts.push("runtime_fraction".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers {
            entries: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn hm(name: &str, rule: StringMatch, invert: bool) -> HeaderMatch {
        HeaderMatch {
            name: name.into(),
            rule,
            invert,
            treat_missing_header_as_empty: false,
            ignore_case: false,
        }
    }

    #[test]
    fn re2_perl_classes_are_ascii_only() {
        // RE2's \d does not match the Arabic-Indic digit; Rust's Unicode \d would.
        assert_eq!(regex_full_match(r"\d+", "٣"), Ok(false));
        assert_eq!(regex_full_match(r"\d+", "42"), Ok(true));
        assert_eq!(regex_full_match(r"[\d]+x", "42x"), Ok(true));
        assert_eq!(regex_full_match(r"\w+", "é"), Ok(false));
        assert_eq!(regex_full_match(r"a\sb", "a\u{85}b"), Ok(false));
        assert_eq!(regex_full_match(r"\Qa.b\E", "a.b"), Ok(true));
        assert_eq!(regex_full_match(r"\Qa.b\E", "axb"), Ok(false));
        assert_eq!(regex_full_match(r"[]a]+", "]a"), Ok(true));
        assert_eq!(regex_full_match(r"[[:digit:]x]+", "1x"), Ok(true));
    }

    #[test]
    fn regex_rules_are_full_matches() {
        assert_eq!(regex_full_match("/re/[0-9]+", "/re/12"), Ok(true));
        assert_eq!(regex_full_match("/re/[0-9]+", "/re/12/x"), Ok(false));
        assert_eq!(regex_full_match("a|b", "ab"), Ok(false));
        assert!(regex_full_match(r"\C", "a").is_err());
    }

    #[test]
    fn an_absent_header_fails_a_value_rule_even_inverted() {
        let h = headers(&[]);
        let rule = hm("x-env", StringMatch::Exact("canary".into()), true);
        assert!(matches!(header(&rule, &h), Check::Fails(_)));
        let mut rule = rule;
        rule.treat_missing_header_as_empty = true;
        assert_eq!(header(&rule, &h), Check::Holds);
    }

    #[test]
    fn presence_rules_follow_inversion() {
        let present = headers(&[("x-p", "1")]);
        let absent = headers(&[]);
        let want = hm("x-p", StringMatch::Present(true), false);
        assert_eq!(header(&want, &present), Check::Holds);
        assert!(matches!(header(&want, &absent), Check::Fails(_)));
        let inverted = hm("x-p", StringMatch::Present(true), true);
        assert_eq!(header(&inverted, &absent), Check::Holds);
        assert!(matches!(header(&inverted, &present), Check::Fails(_)));
    }

    #[test]
    fn repeated_headers_match_value_by_value() {
        let h = headers(&[("x-a", "1"), ("x-a", "2")]);
        let exact = |v: &str, invert| header(&hm("x-a", StringMatch::Exact(v.into()), invert), &h);
        assert_eq!(exact("1", false), Check::Holds);
        assert_eq!(exact("2", false), Check::Holds);
        assert!(matches!(exact("1,2", false), Check::Fails(_)));
        assert!(matches!(exact("1", true), Check::Fails(_)));
        assert_eq!(exact("3", true), Check::Holds);
        let one = headers(&[("x-a", "1,2")]);
        assert!(matches!(
            header(&hm("x-a", StringMatch::Exact("1".into()), false), &one),
            Check::Fails(_)
        ));
    }

    #[test]
    fn ranges_are_half_open_integers() {
        let rule = hm("x-n", StringMatch::Range(10, 20), false);
        assert_eq!(header(&rule, &headers(&[("x-n", "10")])), Check::Holds);
        assert!(matches!(
            header(&rule, &headers(&[("x-n", "20")])),
            Check::Fails(_)
        ));
        assert!(matches!(
            header(&rule, &headers(&[("x-n", "1x")])),
            Check::Fails(_)
        ));
        assert_eq!(header(&rule, &headers(&[("x-n", " +15 ")])), Check::Holds);
    }

    #[test]
    fn ignore_case_folds_ascii_for_literal_rules() {
        let mut rule = hm("x-c", StringMatch::Exact("Canary".into()), false);
        rule.ignore_case = true;
        assert_eq!(header(&rule, &headers(&[("x-c", "CANARY")])), Check::Holds);
        rule.ignore_case = false;
        assert!(matches!(
            header(&rule, &headers(&[("x-c", "CANARY")])),
            Check::Fails(_)
        ));
    }

    #[test]
    fn query_parameters_take_the_first_value_without_decoding() {
        let params = query_parameters("/q?v=2&v=3&flag&x=a%20b#frag");
        assert_eq!(params[0], ("v".into(), "2".into()));
        assert_eq!(params[2], ("flag".into(), "".into()));
        assert_eq!(params[3], ("x".into(), "a%20b".into()));
        let rule = QueryParameterMatch {
            name: "v".into(),
            rule: StringMatch::Exact("2".into()),
            ignore_case: false,
        };
        assert_eq!(query_parameter(&rule, &params), Check::Holds);
        let absent = QueryParameterMatch {
            name: "w".into(),
            rule: StringMatch::Present(false),
            ignore_case: false,
        };
        assert_eq!(query_parameter(&absent, &params), Check::Holds);
    }

    fn rm(path: PathMatch, case_sensitive: Option<bool>) -> RouteMatch {
        RouteMatch {
            path,
            case_sensitive,
            headers: Vec::new(),
            query_parameters: Vec::new(),
            grpc: false,
            runtime_fraction: false,
        }
    }

    #[test]
    fn path_rules_ignore_the_query_string() {
        let exact = rm(PathMatch::Path("/exact".into()), None);
        assert_eq!(path(&exact, "/exact?x=1", "GET", false), Check::Holds);
        assert!(matches!(
            path(&exact, "/Exact", "GET", false),
            Check::Fails(_)
        ));
        let ci = rm(PathMatch::Prefix("/pre".into()), Some(false));
        assert_eq!(path(&ci, "/PREfix", "GET", false), Check::Holds);
        let re = rm(PathMatch::SafeRegex("/re/[0-9]+".into()), None);
        assert_eq!(path(&re, "/re/7?q", "GET", false), Check::Holds);
    }

    #[test]
    fn path_separated_prefix_needs_a_segment_boundary() {
        let sep = rm(PathMatch::PathSeparatedPrefix("/sep".into()), None);
        assert_eq!(path(&sep, "/sep", "GET", false), Check::Holds);
        assert_eq!(path(&sep, "/sep/x", "GET", false), Check::Holds);
        assert_eq!(path(&sep, "/sep?x", "GET", false), Check::Holds);
        assert!(matches!(
            path(&sep, "/separate", "GET", false),
            Check::Fails(_)
        ));
    }

    #[test]
    fn path_parameters_are_cut_only_when_asked() {
        let exact = rm(PathMatch::Path("/a".into()), None);
        assert!(matches!(
            path(&exact, "/a;v=1", "GET", false),
            Check::Fails(_)
        ));
        assert_eq!(path(&exact, "/a;v=1", "GET", true), Check::Holds);
    }

    #[test]
    fn grpc_is_told_by_content_type() {
        assert!(is_grpc(&headers(&[("content-type", "application/grpc")])));
        assert!(is_grpc(&headers(&[(
            "content-type",
            "application/grpc+proto"
        )])));
        assert!(!is_grpc(&headers(&[(
            "content-type",
            "application/grpc-web"
        )])));
    }
}
