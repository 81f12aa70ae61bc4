//! Tables for people: Heft's own (aligned, fitted to the terminal, coloured there) and
//! `istioctl`'s (Go's `text/tabwriter`, byte for byte).

use std::fmt::Write as _;

/// Go's `text/tabwriter` with `minwidth` 0 and `' '` padding, as `istioctl` sets it up. Each line
/// is its cells; every cell but a line's last is tab-terminated and takes part in column
/// alignment, which Go computes per block of consecutive lines that have the column.
pub fn tabwriter(lines: &[Vec<String>], padding: usize) -> String {
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(lines, 0, lines.len(), padding, &mut widths, &mut out);
    out
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

/// Whether line `i` has a tab-terminated cell in `column`.
fn has_column(lines: &[Vec<String>], i: usize, column: usize) -> bool {
    column + 1 < lines[i].len()
}

fn format_block(
    lines: &[Vec<String>],
    mut line0: usize,
    line1: usize,
    padding: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if !has_column(lines, this, column) {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut w = 0;
        while this < line1 && has_column(lines, this, column) {
            w = w.max(width(&lines[this][column]) + padding);
            this += 1;
        }
        widths.push(w);
        format_block(lines, line0, this, padding, widths, out);
        widths.pop();
        line0 = this;
        // Go's loop steps past the line that ended the block: it lacks the column anyway.
        this += 1;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<String>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&w) = widths.get(j) {
                for _ in width(cell)..w {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    }
}

/// How a Heft table is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layout {
    /// Fit to this many columns by shortening the widest column (a terminal's width).
    pub width: Option<usize>,
    /// Bold headers and coloured states.
    pub color: bool,
}

const GAP: &str = "   ";
const MIN_COLUMN: usize = 12;

/// A Heft table: left-aligned columns three spaces apart, numbers right-aligned.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers; `right` names the right-aligned ones.
    pub fn new(headers: &[&'static str], right: &[&str]) -> Table {
        Table {
            headers: headers.to_vec(),
            right: headers.iter().map(|h| right.contains(h)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per header).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    /// The table's text.
    pub fn render(&self, layout: Layout) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(width(c));
            }
        }
        if let Some(limit) = layout.width {
            shrink(&mut widths, &self.headers, limit);
        }
        let mut out = String::new();
        let line = |cells: Vec<String>, header: bool, out: &mut String| {
            let mut text = String::new();
            for (j, cell) in cells.iter().enumerate() {
                let cell = fit(cell, widths[j]);
                let pad = widths[j] - width(&cell);
                let styled = if layout.color {
                    paint(&cell, header)
                } else {
                    cell.clone()
                };
                if j > 0 {
                    text.push_str(GAP);
                }
                if self.right[j] {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(&styled);
                } else {
                    text.push_str(&styled);
                    if j + 1 < n {
                        text.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(
            self.headers.iter().map(|h| h.to_string()).collect(),
            true,
            &mut out,
        );
        for r in &self.rows {
            line(r.clone(), false, &mut out);
        }
        out
    }
}

/// Narrows the widest column, a character at a time, until the line fits `limit`: first down to
/// [`MIN_COLUMN`] (or the header), then, if that is not enough, down to the header.
fn shrink(widths: &mut [usize], headers: &[&str], limit: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + GAP.len() * w.len().saturating_sub(1);
    for min in [MIN_COLUMN, 1] {
        while total(widths) > limit {
            let widest = widths
                .iter()
                .enumerate()
                .filter(|(i, w)| **w > min.max(width(headers[*i])))
                .max_by_key(|(_, w)| **w)
                .map(|(i, _)| i);
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
    }
}

/// A cell cut to `w` characters, the cut marked with `…`.
fn fit(cell: &str, w: usize) -> String {
    if width(cell) <= w {
        return cell.to_string();
    }
    let mut s: String = cell.chars().take(w.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn paint(cell: &str, header: bool) -> String {
    if header {
        return format!("\x1b[1m{cell}\x1b[0m");
    }
    let code = match cell {
        "HEALTHY" | "ACTIVE" | "OK" | "true" => "32",
        "UNHEALTHY" | "FAILED" | "false" | "TIMEOUT" => "31",
        "DRAINING" | "DEGRADED" | "WARMING" | "draining" | "warming" => "33",
        _ => return cell.to_string(),
    };
    format!("\x1b[{code}m{cell}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tabwriter_pads_terminated_cells_and_leaves_the_last_one() {
        let lines = vec![
            cells(&["NAME", "VHOST", "MATCH"]),
            cells(&["http.8080", "a", ""]),
            cells(&["", "backend", "x"]),
        ];
        let text = tabwriter(&lines, 5);
        assert_eq!(
            text,
            "NAME          VHOST       MATCH\nhttp.8080     a           \n              backend     x\n"
        );
    }

    #[test]
    fn tabwriter_aligns_each_block_of_lines_on_its_own() {
        // A line with fewer cells ends the block: the lines after it align among themselves.
        let lines = vec![
            cells(&["a", "b"]),
            cells(&["longer", "c"]),
            cells(&["no tabs here"]),
            cells(&["x", "y"]),
        ];
        assert_eq!(
            tabwriter(&lines, 1),
            "a      b\nlonger c\nno tabs here\nx y\n"
        );
    }

    #[test]
    fn tables_fit_the_width_by_cutting_the_widest_column() {
        let mut t = Table::new(&["NAME", "PORT"], &["PORT"]);
        t.row(cells(&[
            "outbound|9080||reviews.default.svc.cluster.local",
            "9080",
        ]));
        let text = t.render(Layout {
            width: Some(30),
            color: false,
        });
        for line in text.lines() {
            assert!(line.chars().count() <= 30, "{line:?}");
        }
        assert!(text.contains('…'));
        let wide = t.render(Layout::default());
        assert!(wide.contains("reviews.default.svc.cluster.local   9080"));
    }
}
