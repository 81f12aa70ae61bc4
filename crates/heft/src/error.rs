//! Errors: what went wrong and where, as a byte offset (a line and column for YAML) and a JSON path.
//!
//! Every error Heft returns for bad input names the byte offset in the (decompressed) input (for
//! YAML input, the line and column) and,
//! where it is known, the JSON path of the value being read, such as
//! `configs[1].dynamic_active_clusters[532].cluster.name`. Paths are built while an error unwinds
//! through the decoders, so reading valid input pays nothing for them.

use std::fmt;

/// One step of a JSON path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// An object member, by its key as it appeared in the input.
    Key(Box<str>),
    /// An array element, by its zero-based index.
    Index(u64),
}

/// What kind of failure an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input could not be opened or read.
    Io,
    /// The input is empty (or only whitespace).
    Empty,
    /// The input is not valid JSON (or protobuf), or ends early.
    Syntax,
    /// The input is valid but holds something Heft does not read (a Kubernetes manifest, `/stats`).
    WrongDocument,
    /// A value has the wrong type or an impossible value for its field.
    InvalidValue,
    /// The input nests deeper than Heft follows.
    TooDeep,
    /// The input is not valid UTF-8.
    Utf8,
}

/// An error reading a dump: what happened, at which byte, on which JSON path.
///
/// ```
/// let err = heft::Dump::from_slice(br#"{"configs": [ {"@type": 1 "#).unwrap_err();
/// assert_eq!(err.kind(), heft::ErrorKind::Syntax);
/// assert!(err.offset().is_some());
/// assert!(err.to_string().contains("configs[0]"), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    offset: Option<u64>,
    /// Line and column (1-based) in a YAML input, which replace the byte offset there.
    line_column: Option<(u64, u64)>,
    /// Path segments, innermost first (they are pushed while unwinding).
    path_rev: Vec<PathSegment>,
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            offset: None,
            line_column: None,
            path_rev: Vec::new(),
        }
    }

    pub(crate) fn at(kind: ErrorKind, offset: u64, message: impl Into<String>) -> Error {
        Error::new(kind, message).with_offset(offset)
    }

    pub(crate) fn io(what: &str, err: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{what}: {err}"))
    }

    pub(crate) fn with_offset(mut self, offset: u64) -> Error {
        if self.offset.is_none() {
            self.offset = Some(offset);
        }
        self
    }

    /// Places the error at a line and column of a YAML input, instead of a byte offset.
    pub(crate) fn at_line_column(mut self, line: u64, column: u64) -> Error {
        self.offset = None;
        self.line_column = Some((line, column));
        self
    }

    /// Drops a byte offset that would mislead (one in text Heft made, not in the input).
    pub(crate) fn without_offset(mut self) -> Error {
        self.offset = None;
        self
    }

    /// Adds the enclosing object key while the error unwinds outwards.
    pub(crate) fn in_key(mut self, key: &str) -> Error {
        self.path_rev.push(PathSegment::Key(key.into()));
        self
    }

    /// Adds the enclosing array index while the error unwinds outwards.
    pub(crate) fn in_index(mut self, index: u64) -> Error {
        self.path_rev.push(PathSegment::Index(index));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The byte offset in the decompressed input, when known (JSON and protobuf input).
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The line and column (both 1-based, the column in characters) in a YAML input, when known.
    ///
    /// ```
    /// let err = heft::Dump::from_slice(b"configs:\n- bootstrap: [1, 2\n").unwrap_err();
    /// assert_eq!(err.kind(), heft::ErrorKind::Syntax);
    /// assert_eq!(err.offset(), None);
    /// assert!(err.line_column().is_some(), "{err}");
    /// assert!(err.to_string().starts_with("at line "), "{err}");
    /// ```
    pub fn line_column(&self) -> Option<(u64, u64)> {
        self.line_column
    }

    /// What went wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON path of the value being read, outermost first; empty at the top level.
    pub fn path(&self) -> impl Iterator<Item = &PathSegment> {
        self.path_rev.iter().rev()
    }

    /// The JSON path rendered as `configs[1].dynamic_active_clusters[532].cluster.name`.
    pub fn path_string(&self) -> String {
        let mut out = String::new();
        for seg in self.path() {
            match seg {
                PathSegment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                PathSegment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path_string();
        let place = match (self.line_column, self.offset) {
            (Some((line, column)), _) => Some(format!("line {line}, column {column}")),
            (None, Some(off)) => Some(format!("byte {off}")),
            (None, None) => None,
        };
        match (place, path.is_empty()) {
            (Some(place), false) => write!(f, "at {place}, {path}: {}", self.message),
            (Some(place), true) => write!(f, "at {place}: {}", self.message),
            (None, false) => write!(f, "at {path}: {}", self.message),
            (None, true) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Names a byte of JSON input for an error message: `an object`, `a number`, `'x'`, `byte 0xff`.
pub(crate) fn describe(b: u8) -> String {
    match b {
        b'{' => "an object".into(),
        b'[' => "an array".into(),
        b'"' => "a string".into(),
        b't' | b'f' => "a boolean".into(),
        b'n' => "null".into(),
        b'-' | b'0'..=b'9' => "a number".into(),
        b if b.is_ascii_graphic() => format!("'{}'", b as char),
        b => format!("byte 0x{b:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_renders_outermost_first() {
        let e = Error::at(ErrorKind::InvalidValue, 7, "expected a string")
            .in_key("name")
            .in_key("cluster")
            .in_index(532)
            .in_key("dynamic_active_clusters")
            .in_index(1)
            .in_key("configs");
        assert_eq!(
            e.path_string(),
            "configs[1].dynamic_active_clusters[532].cluster.name"
        );
        assert_eq!(
            e.to_string(),
            "at byte 7, configs[1].dynamic_active_clusters[532].cluster.name: expected a string"
        );
    }

    #[test]
    fn first_offset_wins() {
        let e = Error::at(ErrorKind::Syntax, 3, "x").with_offset(9);
        assert_eq!(e.offset(), Some(3));
    }
}
