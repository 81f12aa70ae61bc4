//! Where each token of the translated JSON came from in the YAML: a compact, bounded table.
//!
//! Errors found in the JSON (a value of the wrong type, a missing field) carry an offset in the
//! translated text, which means nothing to the user; this table turns it into the YAML line and
//! column of the value. Every key and value start is recorded, delta-encoded as varints in blocks
//! (about 3 bytes a token). Only the most recent [`KEEP_JSON_BYTES`] of JSON are kept, so the
//! table stays bounded whatever the input's size: the reader decodes at most a few batches of a
//! few MiB behind the translation, so an error never refers further back unless one resource
//! alone is larger than that.

use std::collections::VecDeque;

/// How much of the most recent JSON output stays locatable.
pub(crate) const KEEP_JSON_BYTES: u64 = 64 << 20;
const BLOCK_TOKENS: u32 = 4096;

/// A place in the YAML text: 1-based line, 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) line: u64,
    pub(crate) column: u64,
}

struct Block {
    /// The first token's JSON offset and place, from which the rest are deltas.
    json: u64,
    line: u64,
    /// Varints per token after the first: JSON offset delta, line delta, column.
    deltas: Vec<u8>,
    column: u64,
    tokens: u32,
    last_json: u64,
    last_line: u64,
}

#[derive(Default)]
pub(crate) struct Positions {
    blocks: VecDeque<Block>,
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get(data: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*at) {
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    v
}

impl Positions {
    /// Records that the JSON token starting at `json` came from `place`. Offsets must not
    /// decrease, nor lines.
    pub(crate) fn record(&mut self, json: u64, place: Place) {
        match self.blocks.back_mut() {
            Some(b) if b.tokens < BLOCK_TOKENS => {
                put(&mut b.deltas, json - b.last_json);
                put(&mut b.deltas, place.line - b.last_line);
                put(&mut b.deltas, place.column);
                b.tokens += 1;
                b.last_json = json;
                b.last_line = place.line;
            }
            _ => {
                self.blocks.push_back(Block {
                    json,
                    line: place.line,
                    column: place.column,
                    deltas: Vec::with_capacity(BLOCK_TOKENS as usize * 3),
                    tokens: 1,
                    last_json: json,
                    last_line: place.line,
                });
                while self
                    .blocks
                    .get(1)
                    .is_some_and(|second| json - second.json > KEEP_JSON_BYTES)
                {
                    self.blocks.pop_front();
                }
            }
        }
    }

    /// The place of the last token that starts at or before `json`; `None` if that part of the
    /// table was dropped (or nothing was recorded).
    pub(crate) fn find(&self, json: u64) -> Option<Place> {
        let i = self.blocks.partition_point(|b| b.json <= json);
        let b = self.blocks.get(i.checked_sub(1)?)?;
        let mut place = Place {
            line: b.line,
            column: b.column,
        };
        let (mut at, mut offset) = (0, b.json);
        for _ in 1..b.tokens {
            let mut peek = at;
            let next = offset + get(&b.deltas, &mut peek);
            if next > json {
                break;
            }
            let line = place.line + get(&b.deltas, &mut peek);
            let column = get(&b.deltas, &mut peek);
            (at, offset, place) = (peek, next, Place { line, column });
        }
        Some(place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_at_or_before_an_offset_across_blocks() {
        let mut p = Positions::default();
        for i in 0..10_000u64 {
            p.record(
                i * 10,
                Place {
                    line: i + 1,
                    column: i % 7 + 1,
                },
            );
        }
        assert_eq!(p.find(0), Some(Place { line: 1, column: 1 }));
        assert_eq!(p.find(9), Some(Place { line: 1, column: 1 }));
        assert_eq!(
            p.find(40_965),
            Some(Place {
                line: 4097,
                column: 4096 % 7 + 1
            })
        );
        assert_eq!(
            p.find(99_999),
            Some(Place {
                line: 10_000,
                column: 9999 % 7 + 1
            })
        );
    }

    #[test]
    fn old_positions_are_dropped_and_say_so() {
        let mut p = Positions::default();
        let step = KEEP_JSON_BYTES / 1000;
        for i in 0..20_000u64 {
            p.record(
                i * step,
                Place {
                    line: i + 1,
                    column: 1,
                },
            );
        }
        assert_eq!(p.find(0), None);
        let last = 19_999 * step;
        assert_eq!(p.find(last).map(|x| x.line), Some(20_000));
        assert!(p.blocks.len() <= 2, "{} blocks kept", p.blocks.len());
    }
}
