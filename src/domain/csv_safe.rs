//! Cells for CSV exports that a spreadsheet will not run as formulas (OWASP "CSV
//! Injection", CWE-1236). RFC 4180 quoting does not help: Excel, LibreOffice and
//! Google Sheets read a cell starting with `=`, `+`, `-` or `@` as a formula (and a
//! leading tab or carriage return is dropped before that check), so such a cell is
//! written with a leading `'`, which spreadsheets show as text. Lead names, DNC
//! reasons and rejected rows come from outside, so every CSV export writes its text
//! cells through [`defang`]; validated E.164 numbers go through [`phone`].

use std::borrow::Cow;

/// The cell as written: prefixed with `'` when it starts with `=`, `+`, `-`, `@`,
/// a tab (0x09) or a carriage return (0x0D); unchanged otherwise.
pub fn defang(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// A phone-number cell. A stored E.164 number (`+`, then 2 to 15 digits, the first
/// not 0) is written as it is: a spreadsheet can only read it as that number (`+`
/// followed by digits calls no function and names no cell), and keeping the `+`
/// bare lets the file be imported again as it was exported. Anything else is
/// defanged like free text.
pub fn phone(cell: &str) -> Cow<'_, str> {
    let digits = cell.strip_prefix('+').unwrap_or("");
    let e164 =
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if e164 { Cow::Borrowed(cell) } else { defang(cell) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_prefixed_and_everything_else_is_kept() {
        let cases = [
            ("=HYPERLINK(\"http://x\",\"click\")", "'=HYPERLINK(\"http://x\",\"click\")"),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "'\r=1+1"),
            ("=", "'="),
            ("", ""),
            ("Acme", "Acme"),
            (" =1+1", " =1+1"),
            ("a=b", "a=b"),
            ("'=already", "'=already"),
            ("\n=1", "\n=1"),
            ("José", "José"),
            ("１=1", "１=1"),
        ];
        for (cell, want) in cases {
            assert_eq!(defang(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn only_a_stored_e164_number_keeps_its_plus() {
        let cases = [
            ("+14152370001", "+14152370001"),
            ("+4930123456", "+4930123456"),
            ("+12", "+12"),
            ("+123456789012345", "+123456789012345"),
            ("+1234567890123456", "'+1234567890123456"),
            ("+1", "'+1"),
            ("+", "'+"),
            ("+0123456", "'+0123456"),
            ("+1 415 237 0001", "'+1 415 237 0001"),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("+14152370001=1", "'+14152370001=1"),
            ("=1+1", "'=1+1"),
            ("-14152370001", "'-14152370001"),
            ("4152370001", "4152370001"),
            ("", ""),
        ];
        for (cell, want) in cases {
            assert_eq!(phone(cell), want, "{cell:?}");
        }
    }
}
