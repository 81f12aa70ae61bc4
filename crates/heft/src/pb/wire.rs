//! The protobuf wire format, read by hand for the outer layers of a dump.
//!
//! The reader walks a message's fields (tag, then value) without decoding them, so the outer
//! walk can find each resource's bytes and its input offset, and hand the bytes to prost on
//! another thread. It checks every length against the bytes that remain and never allocates:
//! values are slices of the input.

use crate::error::{Error, ErrorKind, Result};

/// Wire type 2: a length-delimited value (string, bytes, message, packed repeated field).
pub(crate) const LEN: u8 = 2;

/// A field's value, by wire type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64,
    /// A length-delimited value and the input offset of its first byte.
    Len(&'a [u8], u64),
    Fixed32,
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) number: u32,
    pub(crate) value: Value<'a>,
    /// Input offset of the field's tag.
    pub(crate) offset: u64,
}

impl<'a> Field<'a> {
    /// The field's bytes, which must be length-delimited.
    pub(crate) fn bytes(&self) -> Result<(&'a [u8], u64)> {
        match self.value {
            Value::Len(b, at) => Ok((b, at)),
            _ => Err(Error::at(
                ErrorKind::Syntax,
                self.offset,
                format!(
                    "wrong wire type for field {}: expected a length-delimited value",
                    self.number
                ),
            )),
        }
    }

    /// The field as UTF-8 text.
    pub(crate) fn string(&self) -> Result<&'a str> {
        let (b, at) = self.bytes()?;
        std::str::from_utf8(b).map_err(|e| {
            Error::at(
                ErrorKind::Utf8,
                at + e.valid_up_to() as u64,
                "invalid UTF-8 in a string field",
            )
        })
    }

    /// The field as a varint.
    pub(crate) fn varint(&self) -> Result<u64> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(Error::at(
                ErrorKind::Syntax,
                self.offset,
                format!(
                    "wrong wire type for field {}: expected a varint",
                    self.number
                ),
            )),
        }
    }
}

/// Reads a varint at `buf[*pos..]`; `base` is the input offset of `buf[0]`.
pub(crate) fn varint(buf: &[u8], pos: &mut usize, base: u64) -> Result<u64> {
    let start = *pos;
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(Error::at(
                ErrorKind::Syntax,
                base + start as u64,
                "the input ends inside a varint",
            ));
        };
        *pos += 1;
        if i == 9 && b > 1 {
            break;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(Error::at(
        ErrorKind::Syntax,
        base + start as u64,
        "varint longer than 10 bytes",
    ))
}

/// The fields of one message, in wire order.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    base: u64,
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    /// Walks `buf`, whose first byte sits at input offset `base`.
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Fields<'a> {
        Fields {
            buf,
            base,
            pos: 0,
            failed: false,
        }
    }

    fn next_field(&mut self) -> Result<Field<'a>> {
        let offset = self.base + self.pos as u64;
        let key = varint(self.buf, &mut self.pos, self.base)?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(Error::at(
                ErrorKind::Syntax,
                offset,
                format!("invalid field number {number}"),
            ));
        }
        let wire = (key & 7) as u8;
        let value = match wire {
            0 => Value::Varint(varint(self.buf, &mut self.pos, self.base)?),
            1 => {
                self.take(8, offset)?;
                Value::Fixed64
            }
            LEN => {
                let len_at = self.base + self.pos as u64;
                let len = varint(self.buf, &mut self.pos, self.base)?;
                let left = self.buf.len() - self.pos;
                if len > left as u64 {
                    return Err(Error::at(
                        ErrorKind::Syntax,
                        len_at,
                        format!(
                            "length {len} of field {number} runs past the end of its message \
                             ({left} bytes left)"
                        ),
                    ));
                }
                let at = self.base + self.pos as u64;
                let bytes = self.take(len as usize, offset)?;
                Value::Len(bytes, at)
            }
            5 => {
                self.take(4, offset)?;
                Value::Fixed32
            }
            w => {
                return Err(Error::at(
                    ErrorKind::Syntax,
                    offset,
                    format!("unsupported wire type {w} for field {number}"),
                ))
            }
        };
        Ok(Field {
            number: number as u32,
            value,
            offset,
        })
    }

    fn take(&mut self, n: usize, offset: u64) -> Result<&'a [u8]> {
        match self.buf.get(self.pos..self.pos + n) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(Error::at(
                ErrorKind::Syntax,
                offset,
                "the input ends inside a field",
            )),
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let f = self.next_field();
        self.failed = f.is_err();
        Some(f)
    }
}

/// Finds the first malformed field at the top level of `buf`, for error offsets after prost
/// rejected a message (prost says what failed, not where).
pub(crate) fn first_fault(buf: &[u8], base: u64) -> Option<Error> {
    Fields::new(buf, base).find_map(|f| f.err())
}

/// An `Any` read by hand: its type URL and the input offset of its payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawAny<'a> {
    pub(crate) type_url: &'a str,
    pub(crate) value: &'a [u8],
    pub(crate) value_at: u64,
}

/// Reads a `google.protobuf.Any` (`type_url = 1`, `value = 2`).
pub(crate) fn any(buf: &[u8], base: u64) -> Result<RawAny<'_>> {
    let mut out = RawAny {
        type_url: "",
        value: &[],
        value_at: base,
    };
    for f in Fields::new(buf, base) {
        let f = f?;
        match f.number {
            1 => out.type_url = f.string()?,
            2 => (out.value, out.value_at) = f.bytes()?,
            _ => {}
        }
    }
    Ok(out)
}

/// Whether `s` looks like a type URL (`type.googleapis.com/envoy.config.cluster.v3.Cluster`).
pub(crate) fn is_type_url(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.contains(&b'/')
        && s.iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_overlong_varints_with_their_offset() {
        let buf = [0xffu8; 11];
        let e = varint(&buf, &mut 0, 40).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.offset(), Some(40));
    }

    #[test]
    fn reads_the_largest_varint() {
        let buf = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&buf, &mut 0, 0).unwrap(), u64::MAX);
    }

    #[test]
    fn a_length_past_the_end_is_a_syntax_error_at_the_length() {
        // Field 1, length 100, 2 bytes of payload.
        let e = Fields::new(&[0x0a, 100, 1, 2], 7)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.offset(), Some(8));
    }
}
