//! The user's own MNO table: mobile network operator and country of a phone number by
//! longest-prefix match against a `prefix,mno,country` CSV (`calls.mno_prefixes`;
//! `config/mno-prefixes.csv` is a documented example). Its rows win over
//! libphonenumber's carrier prefixes (see [`crate::numbers`]).
//!
//! A prefix names the operator that holds the number range; with number
//! portability that need not be the subscriber's current network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Longest prefix accepted: E.164 numbers have at most 15 digits.
const MAX_PREFIX_DIGITS: usize = 15;

/// What is wrong with one CSV line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not exactly `prefix,mno,country`.
    #[error("expected 3 fields (prefix,mno,country), found {0}")]
    FieldCount(usize),
    /// A quoted field is not closed, or has text after its closing quote.
    #[error("malformed quoted field")]
    BadQuote,
    /// The prefix is not `+` and 1–15 digits (or just digits).
    #[error("invalid prefix {0:?}: expected \"+\" followed by 1 to 15 digits")]
    BadPrefix(String),
    /// The operator name is empty.
    #[error("empty mno name")]
    EmptyMno,
    /// The country is not an ISO 3166-1 alpha-2 code.
    #[error("invalid country {0:?}: expected a 2-letter ISO 3166-1 code")]
    BadCountry(String),
    /// The same prefix appeared earlier.
    #[error("prefix {prefix} already defined on line {first_line}")]
    DuplicatePrefix {
        /// The repeated prefix.
        prefix: String,
        /// Line of its first definition.
        first_line: usize,
    },
}

/// Why a prefix table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MnoError {
    /// A line is malformed.
    #[error("{}line {line}: {kind}", in_file(.path.as_deref()))]
    Parse {
        /// File the line is in, when loaded from a file.
        path: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        kind: LineError,
    },
}

fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    mno: String,
    country: String,
    line: usize,
}

/// Prefix table with longest-prefix lookup.
///
/// Prefixes sit in one hash map; a lookup probes it once per distinct prefix
/// length present (a handful), longest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MnoTable {
    by_prefix: HashMap<String, Entry>,
    /// Distinct prefix lengths in bytes (including any "+"), longest first.
    lengths: Vec<usize>,
}

impl MnoTable {
    /// Parses `prefix,mno,country` CSV text.
    ///
    /// Blank lines and lines starting with `#` are skipped. The header line
    /// `prefix,mno,country` is optional but, if present, must be the first
    /// non-comment line. Fields may be double-quoted (RFC 4180, `""` for a
    /// quote) and are trimmed. Prefixes are `+` and digits (E.164) or bare
    /// digits for tables keyed on national formats; countries are upper-cased.
    pub fn from_csv_str(s: &str) -> Result<Self, MnoError> {
        Self::parse(s, None)
    }

    /// Parses CSV text read from `path` (the caller reads the file: the engine does no
    /// I/O); errors name the file and line.
    pub fn from_csv_named(text: &str, path: &Path) -> Result<Self, MnoError> {
        Self::parse(text, Some(path))
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    /// True when the table has no prefixes.
    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }

    /// `(mno, country)` of the longest prefix matching `number`, after
    /// [`normalize_number`].
    ///
    /// A number without `+` is tried both as given (for tables keyed on
    /// national or bare-digit formats) and with `+` prepended, since SIP
    /// user parts often carry E.164 digits without the plus. The longer
    /// match wins; on a tie the as-given form does, as its row was written
    /// for exactly that format.
    pub fn lookup(&self, number: &str) -> Option<(&str, &str)> {
        let n = normalize_number(number)?;
        let entry = if n.starts_with('+') {
            self.longest(&n).map(|(_, e)| e)
        } else {
            let as_given = self.longest(&n);
            let with_plus = self.longest(&format!("+{n}"));
            match (as_given, with_plus) {
                (Some((a, ea)), Some((p, ep))) => Some(if p - 1 > a { ep } else { ea }),
                (a, p) => a.or(p).map(|(_, e)| e),
            }
        }?;
        Some((entry.mno.as_str(), entry.country.as_str()))
    }

    /// Longest matching prefix as (length in bytes, entry).
    fn longest(&self, n: &str) -> Option<(usize, &Entry)> {
        self.lengths
            .iter()
            .filter(|&&len| len <= n.len())
            .find_map(|&len| {
                n.get(..len)
                    .and_then(|p| self.by_prefix.get(p))
                    .map(|e| (len, e))
            })
    }

    fn parse(s: &str, path: Option<&Path>) -> Result<Self, MnoError> {
        let err = |line: usize, kind: LineError| MnoError::Parse {
            path: path.map(Path::to_path_buf),
            line,
            kind,
        };
        let s = s.strip_prefix('\u{feff}').unwrap_or(s);
        let mut table = Self::default();
        let mut seen_data = false;
        for (idx, raw) in s.lines().enumerate() {
            let line_no = idx + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_fields(line).map_err(|k| err(line_no, k))?;
            let first_row = !seen_data;
            seen_data = true;
            if first_row && is_header(&fields) {
                continue;
            }
            let [prefix, mno, country] = <[String; 3]>::try_from(fields)
                .map_err(|f| err(line_no, LineError::FieldCount(f.len())))?;
            let prefix = valid_prefix(&prefix).map_err(|k| err(line_no, k))?;
            if mno.is_empty() {
                return Err(err(line_no, LineError::EmptyMno));
            }
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(err(line_no, LineError::BadCountry(country)));
            }
            if let Some(first) = table.by_prefix.get(&prefix) {
                let kind = LineError::DuplicatePrefix {
                    prefix,
                    first_line: first.line,
                };
                return Err(err(line_no, kind));
            }
            table.by_prefix.insert(
                prefix,
                Entry {
                    mno,
                    country: country.to_ascii_uppercase(),
                    line: line_no,
                },
            );
        }
        let mut lengths: Vec<usize> = table.by_prefix.keys().map(String::len).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        table.lengths = lengths;
        Ok(table)
    }
}

/// Reduces a dialled or signalled number to `+digits` or `digits`.
///
/// Accepts `sip:`, `sips:` and `tel:` URIs (keeping the user part, dropping
/// `@host` and `;params`), strips spaces, tabs, `-`, `.`, `(` and `)`, and
/// turns an international `00` prefix into `+`. Anything else that is not a
/// digit (e.g. "anonymous") gives `None`.
pub fn normalize_number(number: &str) -> Option<String> {
    let mut s = number.trim();
    for scheme in ["sips:", "sip:", "tel:"] {
        if s.len() >= scheme.len()
            && s.get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            s = s.get(scheme.len()..).unwrap_or("");
            break;
        }
    }
    let s = s.split(['@', ';']).next().unwrap_or("");
    let mut out = String::with_capacity(s.len() + 1);
    for (i, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => out.push(c),
            '+' if i == 0 => out.push(c),
            ' ' | '\t' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if let Some(rest) = out.strip_prefix("00") {
        out = format!("+{rest}");
    }
    let digits = out.strip_prefix('+').unwrap_or(&out);
    if digits.is_empty() {
        return None;
    }
    Some(out)
}

fn is_header(fields: &[String]) -> bool {
    let expected = ["prefix", "mno", "country"];
    fields.len() == expected.len()
        && fields
            .iter()
            .zip(expected)
            .all(|(f, e)| f.eq_ignore_ascii_case(e))
}

fn valid_prefix(p: &str) -> Result<String, LineError> {
    let digits = p.strip_prefix('+').unwrap_or(p);
    let ok = (1..=MAX_PREFIX_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(p.to_string())
    } else {
        Err(LineError::BadPrefix(p.to_string()))
    }
}

/// Splits one CSV line into trimmed fields, honouring double quotes.
pub(crate) fn split_fields(line: &str) -> Result<Vec<String>, LineError> {
    let mut fields = Vec::with_capacity(3);
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(LineError::BadQuote),
                }
            }
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(LineError::BadQuote),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# test table
prefix,mno,country
+4477,Generic UK Mobile,GB
+447700,Vodafone UK,GB
+4915,Some DE,de
\"+44\", \"Fixed, Misc\" ,GB
0803,National Form,NG
";

    fn table() -> MnoTable {
        match MnoTable::from_csv_str(SAMPLE) {
            Ok(t) => t,
            Err(e) => panic!("sample table rejected: {e}"),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        assert_eq!(t.len(), 5);
        assert_eq!(t.lookup("+447700900123"), Some(("Vodafone UK", "GB")));
        assert_eq!(t.lookup("+447712345678"), Some(("Generic UK Mobile", "GB")));
        assert_eq!(t.lookup("+442071234567"), Some(("Fixed, Misc", "GB")));
        assert_eq!(t.lookup("+4915112345678"), Some(("Some DE", "DE")));
    }

    #[test]
    fn unknown_is_none() {
        let t = table();
        assert_eq!(t.lookup("+15551234567"), None);
        assert_eq!(t.lookup("anonymous"), None);
        assert_eq!(t.lookup(""), None);
        assert_eq!(t.lookup("+"), None);
        assert_eq!(MnoTable::default().lookup("+447700900123"), None);
    }

    #[test]
    fn numbers_are_normalised() {
        let t = table();
        let vf = Some(("Vodafone UK", "GB"));
        assert_eq!(t.lookup("+44 (7700) 900-123"), vf);
        assert_eq!(t.lookup("00447700900123"), vf);
        assert_eq!(t.lookup("447700900123"), vf, "E.164 digits without +");
        assert_eq!(t.lookup("sip:+447700900123@sbc.example;user=phone"), vf);
        assert_eq!(t.lookup("tel:+44-7700-900123"), vf);
        assert_eq!(t.lookup("08031234567"), Some(("National Form", "NG")));
        assert_eq!(normalize_number("0044 20"), Some("+4420".to_string()));
        assert_eq!(normalize_number("44+20"), None);
    }

    #[test]
    fn tie_prefers_as_given_longer_prefers_plus() {
        let t = MnoTable::from_csv_str(
            "4477,Bare,GB\n+447700,Plus,GB\n+4412,Plus short,GB\n4412,Bare short,GB\n",
        )
        .unwrap_or_default();
        assert_eq!(t.lookup("447700123"), Some(("Plus", "GB")));
        assert_eq!(t.lookup("4412999"), Some(("Bare short", "GB")));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let cases = [
            (
                "prefix,mno,country\n+44,A,GB\n+44x,B,GB\n",
                3,
                "invalid prefix",
            ),
            ("+44,A\n", 1, "expected 3 fields"),
            ("# c\n\n+44,A,GB,extra\n", 3, "found 4"),
            ("+44,,GB\n", 1, "empty mno"),
            ("+44,A,GBR\n", 1, "invalid country"),
            ("+44,A,GB\n+44,B,GB\n", 2, "already defined on line 1"),
            ("+44,\"A,GB\n", 1, "quoted"),
            ("+44,A,GB\nprefix,mno,country\n", 2, "invalid prefix"),
            ("+,A,GB\n", 1, "invalid prefix"),
            ("+1234567890123456,A,GB\n", 1, "invalid prefix"),
        ];
        for (csv, line, needle) in cases {
            match MnoTable::from_csv_str(csv) {
                Err(e @ MnoError::Parse { line: l, .. }) => {
                    assert_eq!(l, line, "{csv:?}: {e}");
                    let msg = e.to_string();
                    assert!(msg.starts_with(&format!("line {line}: ")), "{msg}");
                    assert!(msg.contains(needle), "{msg} lacks {needle}");
                }
                other => panic!("{csv:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn errors_name_the_file() {
        let path = Path::new("/etc/vqprobe/bad.csv");
        let msg = MnoTable::from_csv_named("prefix,mno,country\n+44,A,G1\n", path)
            .map(|_| ())
            .err()
            .map(|e| e.to_string());
        let expected = format!("{}: line 2: invalid country", path.display());
        assert!(
            msg.as_deref().is_some_and(|m| m.starts_with(&expected)),
            "{msg:?}"
        );
    }

    #[test]
    fn example_table_parses() {
        let text = include_str!("../../../config/mno-prefixes.csv");
        let t = match MnoTable::from_csv_str(text) {
            Ok(t) => t,
            Err(e) => panic!("config/mno-prefixes.csv: {e}"),
        };
        assert!(!t.is_empty());
    }
}
