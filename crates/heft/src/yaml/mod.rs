//! Reading YAML (`istioctl proxy-config … -o yaml`): translated on the fly into JSON text that the
//! JSON reader reads as it reads a pipe (on its own thread, so the two overlap), so every JSON
//! behaviour holds for YAML unchanged, and memory stays bounded by what the JSON reader holds.
//!
//! This module owns detection (what is YAML, what is neither JSON nor YAML), the translation
//! (`translate`: YAML 1.2 core schema scalars, anything JSON cannot hold refused), and the
//! mapping of everything positional back to the YAML text: errors and skipped resources get the
//! YAML line and column of the value they concern, sections their YAML byte span. Resources'
//! own spans are not kept (`None`): offsets in the translated text would mislead.

mod chars;
mod positions;
mod scalar;
mod translate;

use crate::error::{describe, Error, ErrorKind, Result};
use crate::model::Span;
use crate::read::ReadOptions;
use crate::stream::{Fold, Outline, Resource};
use positions::Place;
use std::io::Read;
use translate::{Chunks, Translator};

/// Puts an error at a YAML place (line and column replace the byte offset).
pub(crate) fn at(e: Error, place: Place) -> Error {
    e.at_line_column(place.line, place.column)
}

/// Whether text input (neither compressed nor protobuf) is YAML: anything that does not start,
/// after an optional byte order mark and whitespace, with `{` or `[`. Input that is neither JSON
/// nor YAML, or a document Heft knows it does not read, is refused here with what it looks like.
/// `head` is the input's start; `whole` says it is the entire input.
pub(crate) fn is_yaml(head: &[u8], whole: bool) -> Result<bool> {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'));
    let Some(start) = start else {
        return Ok(false);
    };
    if matches!(text[start], b'{' | b'[') {
        return Ok(false);
    }
    let refuse = |at: usize, what: String| {
        Err(Error::at(
            ErrorKind::WrongDocument,
            at as u64,
            format!("not an Envoy config dump: {what}"),
        ))
    };
    let shown = &text[start..];
    let first_line = shown.split(|&b| b == b'\n').next().unwrap_or(b"");
    let first_line = String::from_utf8_lossy(first_line);
    if first_line.starts_with("# HELP") || first_line.starts_with("# TYPE") {
        return refuse(0, "it looks like Prometheus metrics".into());
    }
    if let Some((key, value)) = first_line.split_once(": ") {
        let stat = key.contains('.') && !key.contains(' ');
        let number = value.trim().parse::<f64>().is_ok() || value.starts_with("P0(");
        if stat && number {
            return refuse(0, "it looks like Envoy's /stats text output".into());
        }
    }
    // YAML allows no control characters but tab and line breaks, and must be UTF-8. Binary data
    // shows such bytes at once; YAML with a bad byte further on is left to the YAML reader,
    // which says where.
    let line_end = text[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| start + i);
    let bad = text[..line_end]
        .iter()
        .position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\r'));
    let utf8_end = match std::str::from_utf8(&text[..line_end]) {
        Ok(_) => None,
        Err(e) if e.error_len().is_none() && !whole && line_end == text.len() => None,
        Err(e) => Some(e.valid_up_to()),
    };
    let first_bad = match (bad, utf8_end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(i) = first_bad {
        let bom = head.len() - text.len();
        let what = format!(
            "expected JSON, YAML or protobuf, found {}",
            describe(text[i])
        );
        return refuse(i + bom, what);
    }
    Ok(true)
}

/// The JSON text a YAML document is read as: the translation every YAML input goes through,
/// whole, for a caller that prints the input's resources as JSON. Errors give the YAML line and
/// column.
///
/// ```
/// let json = heft::yaml::to_json(b"configs:\n- name: a\n  port: 80\n  on: yes\n")?;
/// let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
/// assert_eq!(v, serde_json::json!({"configs": [{"name": "a", "port": 80, "on": "yes"}]}));
/// # Ok::<(), heft::Error>(())
/// ```
pub fn to_json(yaml: &[u8]) -> Result<Vec<u8>> {
    let whole = chars::Whole::new(yaml);
    let parser = saphyr_parser::Parser::new_from_str(whole.text());
    let (to, from) = std::sync::mpsc::sync_channel::<translate::Chunk>(CHUNKS_IN_FLIGHT);
    let (json, outcome) = std::thread::scope(|s| {
        let collect = s.spawn(move || {
            let mut json = Vec::new();
            // An error chunk comes with the outcome's error, returned below.
            for chunk in from.into_iter().flatten() {
                json.extend_from_slice(&chunk);
            }
            json
        });
        let outcome = Translator::new(parser, whole).pump(&to);
        drop(to);
        match collect.join() {
            Ok(json) => (json, outcome),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    match outcome.error {
        Some(e) => Err(e),
        None => Ok(json),
    }
}

/// Reads YAML held in memory (a mapped file or a slice).
pub(crate) fn fold_slice<F: Fold>(
    bytes: &[u8],
    compression: &'static str,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    let whole = chars::Whole::new(bytes);
    let parser = saphyr_parser::Parser::new_from_str(whole.text());
    finish(Translator::new(parser, whole), compression, opts, fold)
}

/// Reads YAML from a stream, decoding its characters as they arrive.
pub(crate) fn fold_stream<F: Fold>(
    reader: Box<dyn Read + '_>,
    compression: &'static str,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)> {
    let (chars, shared) = chars::Chars::new(reader);
    let parser = saphyr_parser::Parser::new_from_iter(chars);
    finish(Translator::new(parser, shared), compression, opts, fold)
}

/// Hands resources on without their spans: offsets in the translated JSON would mislead.
struct NoSpans<'f, F>(&'f F);

impl<F: Fold> Fold for NoSpans<'_, F> {
    type Acc = F::Acc;

    fn start(&self) -> F::Acc {
        self.0.start()
    }

    fn add(&self, acc: &mut F::Acc, resource: &Resource, raw: &[u8]) {
        self.add_owned(acc, resource.clone(), raw);
    }

    fn add_owned(&self, acc: &mut F::Acc, mut resource: Resource, raw: &[u8]) {
        resource.meta_mut().span = None;
        self.0.add_owned(acc, resource, raw);
    }

    fn merge(&self, acc: &mut F::Acc, later: F::Acc) {
        self.0.merge(acc, later);
    }

    fn bootstrap(&self, bootstrap: &crate::model::Bootstrap) {
        self.0.bootstrap(bootstrap);
    }

    fn detail(&self) -> crate::stream::Detail {
        self.0.detail()
    }
}

/// Chunks of JSON in flight between the translation and the JSON reader.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Runs the translation on this thread and the JSON reader on another, so that parsing the YAML
/// and reading the JSON overlap; then maps what is positional back to the YAML.
fn finish<'a, T, S, F>(
    translator: Translator<'a, T, S>,
    compression: &'static str,
    opts: &ReadOptions,
    fold: &F,
) -> Result<(Outline, F::Acc)>
where
    T: saphyr_parser::Input + 'a,
    S: chars::Source + 'a,
    F: Fold,
{
    let (to, from) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let no_spans = NoSpans(fold);
    // Progress is reported by the translation's source, in YAML bytes.
    let json_opts = ReadOptions {
        progress: None,
        ..opts.clone()
    };
    let (read, outcome) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let window = crate::json::window::Window::reader(Box::new(Chunks::new(from)));
            crate::read::read_window(window, compression, &json_opts, &no_spans, None)
        });
        let outcome = translator.pump(&to);
        drop(to);
        match reader.join() {
            Ok(read) => (read, outcome),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let locate = |e: Error| match e.offset().and_then(|o| outcome.positions.find(o)) {
        Some(place) => at(e, place),
        // A JSON offset means nothing to the user of YAML input.
        None => e.without_offset(),
    };
    let (mut outline, acc) = match read {
        // A translation error is why the JSON reader stopped reading.
        Err(e) if e.kind() == ErrorKind::Io && outcome.error.is_some() => {
            return Err(outcome.error.clone().unwrap_or(e))
        }
        Err(e) => return Err(locate(e)),
        Ok(read) => read,
    };
    outline.source.encoding = "yaml";
    outline.source.bytes = outcome.yaml_bytes;
    let stopped = outcome.error.as_ref().map(|e| (e, outline.skipped.len()));
    for (i, s) in outline.skipped.iter_mut().enumerate() {
        match stopped {
            // Under --keep-going, the translation error ended the reading (the JSON reader saw
            // it as a failed read, which has no offset).
            Some((e, n)) if i + 1 == n && s.offset.is_none() => {
                s.reason = format!("reading stopped: {}", e.message());
                s.offset = None;
                (s.line, s.column) = e.line_column().unzip();
            }
            _ => {
                let place = s.offset.and_then(|o| outcome.positions.find(o));
                s.offset = None;
                s.line = place.map(|p| p.line);
                s.column = place.map(|p| p.column);
            }
        }
    }
    // Sections' spans, and those of the sections Heft keeps opaque, become YAML byte spans.
    let yaml_span = |json: Span| {
        let mark = outcome
            .sections
            .iter()
            .find(|m| m.json_start == json.offset)?;
        Some(Span {
            offset: mark.yaml_start,
            len: mark.yaml_end - mark.yaml_start,
        })
    };
    for o in &mut outline.opaque_sections {
        let section = outline
            .sections
            .iter()
            .find(|s| Some(s.span) == o.meta.span);
        o.meta.span = section.and_then(|s| yaml_span(s.span));
    }
    for section in &mut outline.sections {
        section.span = yaml_span(section.span).unwrap_or_default();
    }
    Ok((outline, acc))
}
