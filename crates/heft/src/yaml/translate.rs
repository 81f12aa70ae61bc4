//! YAML events in, JSON text out, in chunks sent to the JSON reader running on another thread.
//!
//! Nothing is held but a few chunks of JSON not yet read and a stack of the open collections, so
//! memory stays bounded whatever the size of the input. Every key and value start is recorded
//! with its YAML place (see `positions`) so that errors found in the JSON can name their YAML line
//! and column.
//! Anything JSON cannot represent is refused with its place: aliases (never expanded, so no alias
//! can make the translation grow), collections used as keys, tags outside the core schema, a
//! second document, and a document that is a single scalar.

use super::chars::Source;
use super::positions::{Place, Positions};
use super::scalar::{self, Json};
use crate::error::{Error, ErrorKind, Result};
use crate::json::scan::MAX_SKIP_DEPTH;
use saphyr_parser::{Event, Input, Parser, ScalarStyle, ScanError, Span, Tag};
use std::borrow::Cow;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender};

/// A collection the translation is inside.
enum Frame {
    Mapping {
        /// Whether a key is expected next (else its value).
        at_key: bool,
        /// No member written yet (no comma needed).
        empty: bool,
        /// The key just read is `configs` (only tracked in the root mapping).
        key_is_configs: bool,
    },
    Sequence {
        /// No element written yet.
        empty: bool,
        /// The value of a top-level `configs` key: its elements are the dump's sections.
        configs: bool,
    },
}

/// Where a section (the root collection, or an element of `configs`) sits in both texts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pub(crate) json_start: u64,
    pub(crate) yaml_start: u64,
    pub(crate) yaml_end: u64,
}

/// What the translation leaves for the reader once the JSON reader is done with it.
#[derive(Default)]
pub(crate) struct Outcome {
    /// The first error the translation met: it explains any error the JSON reader saw after it.
    pub(crate) error: Option<Error>,
    pub(crate) positions: Positions,
    pub(crate) sections: Vec<Mark>,
    pub(crate) yaml_bytes: u64,
}

#[derive(PartialEq, Eq)]
enum Documents {
    /// No document with content yet.
    None,
    /// Inside the document being translated.
    Open,
    /// The document has ended; later ones must be empty.
    Closed,
}

/// Translates the events of one YAML input (characters from `S`, read through `T`).
pub(crate) struct Translator<'a, T: Input, S: Source> {
    parser: Parser<'a, T>,
    source: S,
    out: Vec<u8>,
    /// JSON offset of `out[0]`.
    base: u64,
    stack: Vec<Frame>,
    documents: Documents,
    /// Open sections: (stack depth, JSON start, YAML byte start).
    open_sections: Vec<(usize, u64, u64)>,
    outcome: Outcome,
}

fn place(span: &Span) -> Place {
    Place {
        line: span.start.line() as u64,
        column: span.start.col() as u64 + 1,
    }
}

/// An error at a YAML place.
fn at(kind: ErrorKind, span: &Span, message: impl Into<String>) -> Error {
    super::at(Error::new(kind, message), place(span))
}

/// A YAML syntax error, at the parser's place for it.
pub(crate) fn syntax(e: &ScanError) -> Error {
    let m = e.marker();
    // The parser counts flow levels in a byte.
    let error = if e.info() == "recursion limit exceeded" {
        Error::new(
            ErrorKind::TooDeep,
            "YAML flow collections (`[`, `{`) nested deeper than 255 levels",
        )
    } else {
        Error::new(ErrorKind::Syntax, format!("invalid YAML: {}", e.info()))
    };
    super::at(
        error,
        Place {
            line: m.line() as u64,
            column: m.col() as u64 + 1,
        },
    )
}

/// What a tag asks a node to be.
enum Tagged {
    Default,
    Core(String),
}

fn tag_of(tag: Option<&Cow<'_, Tag>>, span: &Span) -> Result<Tagged> {
    const CORE: &str = "tag:yaml.org,2002:";
    let Some(tag) = tag else {
        return Ok(Tagged::Default);
    };
    if tag.handle == CORE {
        return Ok(Tagged::Core(tag.suffix.clone()));
    }
    if tag.handle.is_empty() {
        if tag.suffix == "!" {
            return Ok(Tagged::Core("str".into()));
        }
        if let Some(core) = tag.suffix.strip_prefix(CORE) {
            return Ok(Tagged::Core(core.into()));
        }
    }
    Err(at(
        ErrorKind::InvalidValue,
        span,
        format!("YAML tag `{tag}` is not supported: JSON has no tags"),
    ))
}

impl<'a, T: Input, S: Source> Translator<'a, T, S> {
    pub(crate) fn new(parser: Parser<'a, T>, source: S) -> Self {
        Translator {
            parser,
            source,
            out: Vec::with_capacity(CHUNK + 4096),
            base: 0,
            stack: Vec::new(),
            documents: Documents::None,
            open_sections: Vec::new(),
            outcome: Outcome::default(),
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.out.len() as u64
    }

    /// Writes the separator a new element needs, and records where the token starts.
    fn begin_token(&mut self, span: &Span) {
        if let Some(frame) = self.stack.last_mut() {
            let (empty, is_key) = match frame {
                Frame::Mapping { at_key, empty, .. } => (empty, *at_key),
                Frame::Sequence { empty, .. } => (empty, true),
            };
            if is_key {
                if !*empty {
                    self.out.push(b',');
                }
                *empty = false;
            }
        }
        let json = self.offset();
        self.outcome.positions.record(json, place(span));
    }

    /// After a value: the mapping it belongs to expects a key again.
    fn end_value(&mut self) {
        if let Some(Frame::Mapping { at_key, .. }) = self.stack.last_mut() {
            *at_key = true;
        }
    }

    fn at_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { at_key: true, .. }))
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Cow<'_, Tag>>,
        span: &Span,
    ) -> Result<()> {
        if self.at_key() {
            // JSON keys are strings: a key's text is its name, whatever it would resolve to.
            self.begin_token(span);
            scalar::write_string(&mut self.out, text);
            self.out.push(b':');
            let configs = self.stack.len() == 1 && text == "configs";
            if let Some(Frame::Mapping {
                at_key,
                key_is_configs,
                ..
            }) = self.stack.last_mut()
            {
                *at_key = false;
                *key_is_configs = configs;
            }
            return Ok(());
        }
        let resolved = match tag_of(tag, span)? {
            Tagged::Default if style == ScalarStyle::Plain => scalar::plain(text),
            Tagged::Default => Json::Str,
            Tagged::Core(t) => match t.as_str() {
                "str" | "binary" | "timestamp" => Json::Str,
                "null" if scalar::plain(text) == Json::Null => Json::Null,
                "bool" => match scalar::plain(text) {
                    b @ Json::Bool(_) => b,
                    _ => return Err(self.bad_tag("bool", text, span)),
                },
                "int" => scalar::int(text).ok_or_else(|| self.bad_tag("int", text, span))?,
                "float" => match scalar::int(text).or_else(|| scalar::float(text)) {
                    Some(Json::Number(n)) => Json::Number(n),
                    Some(Json::Special(s)) => Json::Special(s),
                    _ => return Err(self.bad_tag("float", text, span)),
                },
                other => {
                    return Err(at(
                        ErrorKind::InvalidValue,
                        span,
                        format!(
                            "YAML tag `!!{other}` does not fit a scalar `{}`",
                            preview(text)
                        ),
                    ))
                }
            },
        };
        self.begin_token(span);
        match resolved {
            Json::Null => self.out.extend_from_slice(b"null"),
            Json::Bool(true) => self.out.extend_from_slice(b"true"),
            Json::Bool(false) => self.out.extend_from_slice(b"false"),
            Json::Number(n) => self.out.extend_from_slice(n.as_bytes()),
            Json::Special(s) => scalar::write_string(&mut self.out, s),
            Json::Str if tag.is_some_and(|t| t.suffix == "binary") => {
                let compact: String = text.split_whitespace().collect();
                scalar::write_string(&mut self.out, &compact);
            }
            Json::Str => scalar::write_string(&mut self.out, text),
        }
        self.end_value();
        Ok(())
    }

    fn bad_tag(&self, tag: &str, text: &str, span: &Span) -> Error {
        at(
            ErrorKind::InvalidValue,
            span,
            format!(
                "`{}` is not a YAML 1.2 {tag} (it is tagged `!!{tag}`)",
                preview(text)
            ),
        )
    }

    fn open(&mut self, mapping: bool, tag: Option<&Cow<'_, Tag>>, span: &Span) -> Result<()> {
        if self.at_key() {
            return Err(at(
                ErrorKind::InvalidValue,
                span,
                "a mapping or list used as a YAML key: JSON keys are strings",
            ));
        }
        let want = if mapping { "map" } else { "seq" };
        if let Tagged::Core(t) = tag_of(tag, span)? {
            if t != want {
                return Err(at(
                    ErrorKind::InvalidValue,
                    span,
                    format!(
                        "YAML tag `!!{t}` on a {}",
                        if mapping { "mapping" } else { "list" }
                    ),
                ));
            }
        }
        if self.stack.len() >= MAX_SKIP_DEPTH {
            return Err(at(
                ErrorKind::TooDeep,
                span,
                format!("nesting deeper than {MAX_SKIP_DEPTH} levels"),
            ));
        }
        self.begin_token(span);
        let section = self.stack.is_empty()
            || (self.stack.len() == 2
                && matches!(
                    self.stack.last(),
                    Some(Frame::Sequence { configs: true, .. })
                ));
        if section {
            let yaml = self.source.byte_of(span.start.index() as u64);
            self.open_sections
                .push((self.stack.len(), self.offset(), yaml));
        }
        let configs = matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                key_is_configs: true,
                ..
            })
        ) && self.stack.len() == 1;
        self.out.push(if mapping { b'{' } else { b'[' });
        self.stack.push(if mapping {
            Frame::Mapping {
                at_key: true,
                empty: true,
                key_is_configs: false,
            }
        } else {
            Frame::Sequence {
                empty: true,
                configs,
            }
        });
        Ok(())
    }

    fn close(&mut self, span: &Span) {
        let frame = self.stack.pop();
        self.out
            .push(if matches!(frame, Some(Frame::Mapping { .. })) {
                b'}'
            } else {
                b']'
            });
        if self
            .open_sections
            .last()
            .is_some_and(|s| s.0 == self.stack.len())
        {
            let (_, json_start, yaml_start) = self.open_sections.pop().unwrap_or_default();
            let yaml_end = self.source.byte_of(span.start.index() as u64);
            self.outcome.sections.push(Mark {
                json_start,
                yaml_start,
                yaml_end,
            });
        }
        self.end_value();
    }

    /// Translates one event; false once the input has ended.
    ///
    /// Where the characters were cut short (invalid UTF-8, a failed read), the parser reads what
    /// came before as the whole input: its events are translated, and the cut is reported when
    /// the parser reaches it, unless the YAML is broken before it.
    fn step(&mut self) -> Result<bool> {
        let cut = |this: &Self| this.source.error();
        let (event, span) = match self.parser.next_event() {
            None => return cut(self).map_or(Ok(false), Err),
            Some(Err(e)) => {
                let e = syntax(&e);
                return Err(match cut(self) {
                    Some(c) if c.line_column() <= e.line_column() => c,
                    _ => e,
                });
            }
            Some(Ok((Event::StreamEnd, _))) if cut(self).is_some() => {
                return cut(self).map_or(Ok(false), Err)
            }
            Some(Ok(x)) => x,
        };
        self.source.forget_before(span.start.index() as u64);
        match event {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => {
                if self.documents == Documents::None {
                    return Err(Error::new(
                        ErrorKind::Empty,
                        "the input is empty (a YAML stream with no document)",
                    ));
                }
                return Ok(false);
            }
            Event::DocumentStart(_) => self.document(&span)?,
            Event::DocumentEnd => {
                if self.documents == Documents::Open {
                    self.documents = Documents::Closed;
                }
            }
            Event::Alias(_) => {
                return Err(at(
                    ErrorKind::InvalidValue,
                    &span,
                    "a YAML alias (`*name`): Heft does not expand aliases, which istioctl never \
                     writes; expand them first (for example with `yq 'explode(.)'`)",
                ))
            }
            Event::Scalar(text, style, _, tag) => {
                if self.stack.is_empty() {
                    return Err(at(
                        ErrorKind::WrongDocument,
                        &span,
                        format!(
                            "not an Envoy config dump: the YAML document is a single value \
                             (`{}`), not a mapping or a list",
                            preview(&text)
                        ),
                    ));
                }
                self.scalar(&text, style, tag.as_ref(), &span)?;
            }
            Event::SequenceStart(_, tag) => self.open(false, tag.as_ref(), &span)?,
            Event::MappingStart(_, tag) => self.open(true, tag.as_ref(), &span)?,
            Event::SequenceEnd | Event::MappingEnd => self.close(&span),
        }
        Ok(true)
    }

    /// A document starts: the first with content is translated; empty ones (a bare `---`) are
    /// skipped; a second one with content is refused.
    fn document(&mut self, span: &Span) -> Result<()> {
        let empty = matches!(
            self.parser.peek(),
            Some(Ok((Event::Scalar(text, ScalarStyle::Plain, 0, None), _))) if text.is_empty()
        );
        if empty {
            // The empty scalar and the document's end.
            self.parser.next_event();
            return Ok(());
        }
        if self.documents != Documents::None {
            return Err(at(
                ErrorKind::InvalidValue,
                span,
                "a second YAML document: Heft reads one document per input (split the stream, \
                 one dump per file)",
            ));
        }
        self.documents = Documents::Open;
        Ok(())
    }
}

/// The start of a scalar, for messages.
fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(40).collect();
    if p.len() < text.len() {
        p.push('…');
    }
    p
}

/// JSON is handed over in chunks of about this size.
const CHUNK: usize = 256 << 10;

/// What the JSON reader receives: JSON text, or the error that ended the translation.
pub(crate) type Chunk = std::result::Result<Vec<u8>, String>;

impl<T: Input, S: Source> Translator<'_, T, S> {
    /// Translates the whole input, sending the JSON in chunks, until the input ends, the
    /// translation fails (the error is sent, and kept in the outcome) or the receiver hangs up
    /// (the JSON reader stopped early).
    pub(crate) fn pump(mut self, to: &SyncSender<Chunk>) -> Outcome {
        loop {
            let mut ended = false;
            while self.out.len() < CHUNK {
                match self.step() {
                    Ok(true) => {}
                    Ok(false) => {
                        ended = true;
                        break;
                    }
                    Err(e) => {
                        let message = e.to_string();
                        let chunk = std::mem::take(&mut self.out);
                        let _ = to.send(Ok(chunk)).and_then(|()| to.send(Err(message)));
                        self.outcome.error = Some(e);
                        return self.outcome;
                    }
                }
            }
            self.base += self.out.len() as u64;
            let chunk = std::mem::replace(&mut self.out, Vec::with_capacity(CHUNK + 4096));
            if to.send(Ok(chunk)).is_err() || ended {
                self.outcome.yaml_bytes = self.source.bytes();
                return self.outcome;
            }
        }
    }
}

/// The JSON reader's end of the translation: reads the chunks as one stream.
pub(crate) struct Chunks {
    from: Receiver<Chunk>,
    chunk: Vec<u8>,
    at: usize,
}

impl Chunks {
    pub(crate) fn new(from: Receiver<Chunk>) -> Chunks {
        Chunks {
            from,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.from.recv() {
                Ok(Ok(chunk)) => (self.chunk, self.at) = (chunk, 0),
                Ok(Err(message)) => return Err(std::io::Error::other(message)),
                // The translation ended: the input is done.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
