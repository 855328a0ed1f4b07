//! Where each CSV row starts, as a line number a person finds in an editor. The CSV
//! reader's own count is not that: it counts `\n` only (every row of a file with
//! old-Mac CR line endings would be on line 1), and a row's position is taken
//! before the blank lines it skipped and before the `\n` of the previous row's
//! `\r\n`. So the text is counted here as the reader pulls it: every line break
//! (`\r\n`, `\n` or a lone `\r`) and every `"`, and a row's byte offset is turned
//! into its first line by skipping the breaks in front of it.

use std::collections::VecDeque;
use std::io::Read;

/// The text under the CSV reader, with its line breaks and quotes counted.
pub struct Lines<R> {
    inner: R,
    /// `"` characters read so far: an odd count at the end means a quote was opened
    /// and never closed.
    pub quotes: u64,
    /// Bytes read so far.
    offset: u64,
    /// Breaks (start offset, length 1 or 2) not yet behind a row asked about.
    breaks: VecDeque<(u64, u64)>,
    /// Breaks already behind a row asked about.
    passed: u64,
    /// The last byte read was a `\r` (a `\n` next makes its break `\r\n`).
    after_cr: bool,
}

impl<R: Read> Lines<R> {
    pub fn new(inner: R) -> Lines<R> {
        Lines { inner, quotes: 0, offset: 0, breaks: VecDeque::new(), passed: 0, after_cr: false }
    }

    /// The line (1-based) of the first character at or after byte `offset` that is
    /// not a line break: where a row the reader says starts at `offset` really
    /// starts. Offsets must be asked in increasing order.
    pub fn line_at(&mut self, offset: u64) -> u64 {
        let mut start = offset;
        while let Some(&(at, len)) = self.breaks.front() {
            if at + len <= start {
                // A break wholly before the row.
            } else if at <= start {
                // The row's offset is inside or at a break: it starts after it.
                start = at + len;
            } else {
                break;
            }
            self.breaks.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, b) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            match b {
                b'\n' if self.after_cr => {
                    if let Some(last) = self.breaks.back_mut() {
                        last.1 = 2;
                    }
                }
                b'\n' | b'\r' => self.breaks.push_back((at, 1)),
                b'"' => self.quotes += 1,
                _ => {}
            }
            self.after_cr = *b == b'\r';
        }
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first line of every row the CSV reader reads from `text`.
    fn row_lines(text: &[u8]) -> Vec<u64> {
        let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(Lines::new(text));
        let mut record = csv::ByteRecord::new();
        let mut lines = Vec::new();
        while csv.read_byte_record(&mut record).unwrap() {
            let offset = record.position().unwrap().byte();
            lines.push(csv.get_mut().line_at(offset));
        }
        lines
    }

    #[test]
    fn rows_are_on_the_lines_an_editor_shows() {
        let cases: [(&[u8], &[u64]); 8] = [
            (b"h\na\nb\n", &[1, 2, 3]),
            (b"h\r\na\r\nb\r\n", &[1, 2, 3]),
            (b"h\ra\rb\r", &[1, 2, 3]),
            (b"h\n\n\na\n\r\n\r\nb", &[1, 4, 7]),
            (b"\n\nh\na\n", &[3, 4]),
            (b"h\r\n\"two\r\nlines\",x\r\nb\r\n", &[1, 2, 4]),
            (b"h\n\"a\nb\nc\",x\n\nd\n", &[1, 2, 6]),
            (b"h\r\r\n\ra\n", &[1, 4]),
        ];
        for (text, want) in cases {
            assert_eq!(row_lines(text), want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn quotes_are_counted() {
        let mut lines = Lines::new(&b"a,\"b\"\"c\",\"d"[..]);
        std::io::copy(&mut lines, &mut std::io::sink()).unwrap();
        assert_eq!(lines.quotes, 5);
    }
}
