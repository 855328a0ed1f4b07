//! What kind of text an uploaded file is, read from its first bytes (the head of
//! the stream, up to 256 KiB): its encoding, its delimiter, or that it is not text
//! at all. Spreadsheets save "CSV" in several encodings; we read the ones a person
//! is likely to hand us and refuse the rest with a sentence saying what to do.
//!
//! - UTF-8, with or without a byte-order mark: read as it is (the mark is skipped).
//! - UTF-16 LE or BE, with a byte-order mark ("Unicode text" from Excel) or without
//!   one (recognised by the zero byte beside every ASCII character): transcoded.
//! - Windows-1252 / Latin-1 (Excel's "CSV" on a US or western-European Windows):
//!   a head that is not valid UTF-8 and has no multi-byte UTF-8 character at all is
//!   read as Windows-1252, a superset of Latin-1's printable characters. A head
//!   with valid multi-byte characters stays UTF-8, and a row with a stray invalid
//!   byte is then rejected on its own (its line, field and reason).
//! - A workbook, an image or an archive (by its signature), or anything else whose
//!   head is 1 % NUL bytes or more and is not UTF-16, is refused as a whole.

use std::io::{BufRead, Read};

use encoding_rs::{Decoder, Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// How to read the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// UTF-8: skip `bom_len` bytes (0 or 3), then read the bytes as they are.
    Utf8 { bom_len: usize },
    /// Another encoding: transcode to UTF-8 (a byte-order mark is dropped).
    Decode(&'static Encoding),
}

/// The head is not text: what it looks like, for the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotText(pub String);

/// Reads the encoding from the head of the stream (see the module docs).
pub fn source(head: &[u8]) -> Result<Source, NotText> {
    match Encoding::for_bom(head) {
        Some((encoding, bom_len)) if encoding == encoding_rs::UTF_8 => return Ok(Source::Utf8 { bom_len }),
        Some((encoding, _)) => return Ok(Source::Decode(encoding)),
        None => {}
    }
    if let Some(encoding) = utf16_without_bom(head) {
        return Ok(Source::Decode(encoding));
    }
    if let Some(kind) = binary(head) {
        return Err(NotText(kind));
    }
    let (multibyte, invalid) = utf8_shape(head);
    Ok(if invalid && !multibyte { Source::Decode(WINDOWS_1252) } else { Source::Utf8 { bom_len: 0 } })
}

/// UTF-16 text of mostly ASCII characters has a zero byte beside nearly every other
/// byte: after it (LE) or before it (BE). Looks at the first 1,024 bytes.
fn utf16_without_bom(head: &[u8]) -> Option<&'static Encoding> {
    let sample = &head[..head.len().min(1_024) & !1];
    if sample.len() < 4 {
        return None;
    }
    let pairs = sample.len() / 2;
    let zeros = |offset: usize| sample.iter().skip(offset).step_by(2).filter(|b| **b == 0).count();
    let (even, odd) = (zeros(0), zeros(1));
    // 90 % of one side zero, and (almost) none of the other: not a binary file.
    let mostly = |n: usize| n * 10 >= pairs * 9;
    let hardly = |n: usize| n * 20 <= pairs;
    match (mostly(odd) && hardly(even), mostly(even) && hardly(odd)) {
        (true, _) => Some(UTF_16LE),
        (_, true) => Some(UTF_16BE),
        _ => None,
    }
}

/// Text has (almost) no NUL bytes; names the binary files people mistake for CSV.
fn binary(head: &[u8]) -> Option<String> {
    let signatures: [(&[u8], &str); 5] = [
        (b"PK\x03\x04", "a ZIP archive, such as an Excel .xlsx workbook"),
        (b"\xD0\xCF\x11\xE0", "an old Excel .xls workbook"),
        (b"\x89PNG", "a PNG image"),
        (b"%PDF", "a PDF document"),
        (b"\x1F\x8B", "a gzip archive"),
    ];
    if let Some((_, what)) = signatures.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(what.to_string());
    }
    // A stray NUL in a text file only costs its row (rejected with its line).
    let nuls = head.iter().filter(|b| **b == 0).count();
    (nuls > 0 && nuls * 100 >= head.len())
        .then(|| format!("binary data: {nuls} NUL bytes in the first {} bytes", head.len()))
}

/// (has a valid multi-byte UTF-8 character, has an invalid byte). A character cut
/// off by the end of the head is neither.
fn utf8_shape(head: &[u8]) -> (bool, bool) {
    let (mut multibyte, mut invalid) = (false, false);
    let mut rest = head;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => return (multibyte || !s.is_ascii(), invalid),
            Err(e) => {
                multibyte |= !rest[..e.valid_up_to()].is_ascii();
                match e.error_len() {
                    None => return (multibyte, invalid),
                    Some(len) => {
                        invalid = true;
                        rest = &rest[e.valid_up_to() + len..];
                    }
                }
            }
        }
    }
}

/// The delimiter of the header line: the one of `,` `;` tab `|` it holds most often
/// (outside quotes), `,` on a tie or when it has none.
pub fn delimiter(head: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for b in head {
        if !quoted && matches!(b, b'\n' | b'\r') {
            break;
        }
        if *b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some((_, n)) = counts.iter_mut().find(|(d, _)| d == b) {
            *n += 1;
        }
    }
    // `max_by_key` keeps the last maximum: walk backwards so that `,` wins ties.
    counts.iter().rev().max_by_key(|(_, n)| *n).filter(|(_, n)| *n > 0).map_or(b',', |(d, _)| *d)
}

/// A UTF-8 view of a stream in another encoding. Malformed input becomes U+FFFD.
pub struct Transcode<R> {
    inner: R,
    decoder: Decoder,
    out: Box<[u8]>,
    start: usize,
    end: usize,
    /// The decoder has seen the end of the input (it must not be called again).
    finished: bool,
}

impl<R: BufRead> Transcode<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> Transcode<R> {
        Transcode {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            out: vec![0; 1 << 16].into_boxed_slice(),
            start: 0,
            end: 0,
            finished: false,
        }
    }
}

impl<R: BufRead> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.start == self.end && !self.finished {
            let src = self.inner.fill_buf()?;
            let last = src.is_empty();
            let (result, read, written, _) = self.decoder.decode_to_utf8(src, &mut self.out, last);
            self.inner.consume(read);
            (self.start, self.end) = (0, written);
            self.finished = last && result == encoding_rs::CoderResult::InputEmpty;
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.out[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// Counts the bytes read from the upload, for progress.
pub struct Counting<R> {
    pub inner: R,
    pub count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let units = if bom { vec![0xFEFF] } else { vec![] }.into_iter().chain(text.encode_utf16());
        for u in units {
            out.extend(if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    }

    fn transcode(bytes: &[u8]) -> String {
        let Source::Decode(encoding) = source(bytes).unwrap() else { panic!("not transcoded") };
        let mut out = String::new();
        Transcode::new(bytes, encoding).read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn encodings_are_read_from_the_head() {
        assert_eq!(source(b"number,name\n4152370001,Zo\xc3\xab\n"), Ok(Source::Utf8 { bom_len: 0 }));
        assert_eq!(source(b"\xef\xbb\xbfnumber\n"), Ok(Source::Utf8 { bom_len: 3 }));
        assert_eq!(source(b""), Ok(Source::Utf8 { bom_len: 0 }));
        // Valid multi-byte characters and one stray byte: UTF-8 (the row is rejected).
        assert_eq!(source(b"name\nZo\xc3\xab\nH\xff\n"), Ok(Source::Utf8 { bom_len: 0 }));
        // A character cut in half by the end of the head is not an error.
        assert_eq!(source(b"name\nZo\xc3"), Ok(Source::Utf8 { bom_len: 0 }));
        assert_eq!(source(b"name\nJos\xe9\n"), Ok(Source::Decode(WINDOWS_1252)));
        for (big_endian, bom) in [(false, true), (true, true), (false, false), (true, false)] {
            let text = "number,name\r\n4152370001,Zoë 李\r\n";
            assert_eq!(transcode(&utf16(text, big_endian, bom)), text, "BE {big_endian} BOM {bom}");
        }
        assert_eq!(transcode(b"name\nJos\xe9 \x80\n"), "name\nJosé €\n");
    }

    #[test]
    fn binary_files_are_named() {
        let refused = |head: &[u8]| source(head).unwrap_err().0;
        assert!(refused(b"PK\x03\x04\x14\x00\x06\x00").contains(".xlsx"));
        assert!(refused(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").contains("PNG"));
        assert_eq!(refused(b"number\n\x00\x01\x02\x03\x04\x00\x06"), "binary data: 2 NUL bytes in the first 14 bytes");
        let stray = [b"number\n".as_slice(), &b"4152370001\n".repeat(20), b"x\x00y\n"].concat();
        assert_eq!(source(&stray), Ok(Source::Utf8 { bom_len: 0 }), "a stray NUL is the row's problem");
    }

    #[test]
    fn the_header_line_names_the_delimiter() {
        let cases: [(&[u8], u8); 9] = [
            (b"number,name\n", b','),
            (b"number;name;email\n1,2;3\n", b';'),
            (b"number\tname\n", b'\t'),
            (b"number|name|email\n", b'|'),
            (b"\"a,b\";number\n", b';'),
            (b"number\n", b','),
            (b"", b','),
            (b"a,b;c\n", b','),
            (b"number;name\rx,y,z,w\r", b';'),
        ];
        for (head, want) in cases {
            assert_eq!(delimiter(head) as char, want as char, "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn transcoding_survives_tiny_reads_and_characters_split_between_them() {
        let bytes = utf16(&"Zoë 李,".repeat(20_000), false, true);
        let reader = std::io::BufReader::with_capacity(3, &bytes[..]);
        let mut out = Vec::new();
        let mut t = Transcode::new(reader, UTF_16LE);
        let mut buf = [0u8; 5];
        loop {
            let n = t.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8(out).unwrap(), "Zoë 李,".repeat(20_000));
        assert_eq!(t.read(&mut buf).unwrap(), 0, "stays at the end");
    }
}
