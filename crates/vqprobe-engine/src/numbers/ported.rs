//! Ported numbers: individual E.164 numbers and the network they are on now, from the
//! operator's mobile number portability (MNP) feed, as a `number,mno` CSV. Prefix data
//! names the operator a range was allocated to; a number that moved is only known to
//! this file.
//!
//! Stored as two parallel sorted vectors (number as an integer, name index): 12 bytes
//! a number, so a national MNP database of ten million numbers takes about 120 MB.

use std::path::{Path, PathBuf};

use crate::mno::split_fields;

/// Why a ported-numbers file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PortedError {
    /// A line is malformed.
    #[error("{}line {line}: {kind}", in_file(.path.as_deref()))]
    Parse {
        /// File the line is in, when loaded from a file.
        path: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        kind: PortedLineError,
    },
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortedLineError {
    /// Not exactly `number,mno`.
    #[error("expected 2 fields (number,mno), found {0}")]
    FieldCount(usize),
    /// A quoted field is not closed, or has text after its closing quote.
    #[error("malformed quoted field")]
    BadQuote,
    /// Not `+` and 1–15 digits.
    #[error("invalid number {0:?}: expected E.164, \"+\" followed by 1 to 15 digits")]
    BadNumber(String),
    /// Empty operator name.
    #[error("empty mno name")]
    EmptyMno,
    /// The number appeared before.
    #[error("number {number} already listed on line {first_line}")]
    Duplicate {
        /// The repeated number.
        number: String,
        /// Where it was first listed.
        first_line: usize,
    },
}

fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// Exact-number table of ported numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortedNumbers {
    /// E.164 digits as integers, sorted.
    numbers: Vec<u64>,
    /// Index into `names`, parallel to `numbers`.
    mno: Vec<u32>,
    names: Vec<Box<str>>,
}

impl PortedNumbers {
    /// Parses `number,mno` CSV text (header `number,mno` optional; `#` comments and
    /// blank lines skipped; fields may be double-quoted).
    pub fn from_csv_str(text: &str) -> Result<PortedNumbers, PortedError> {
        Self::parse(text, None)
    }

    /// Parses CSV text read from `path` (the caller reads the file); errors name it.
    pub fn from_csv_named(text: &str, path: &Path) -> Result<PortedNumbers, PortedError> {
        Self::parse(text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<PortedNumbers, PortedError> {
        let err = |line: usize, kind: PortedLineError| PortedError::Parse {
            path: path.map(Path::to_path_buf),
            line,
            kind,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rows: Vec<(u64, u32, usize)> = Vec::new();
        let mut names: Vec<Box<str>> = Vec::new();
        let mut index: std::collections::HashMap<String, u32> = Default::default();
        let mut first = true;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_fields(line).map_err(|_| err(line_no, PortedLineError::BadQuote))?;
            let header = first
                && fields.len() == 2
                && fields[0].eq_ignore_ascii_case("number")
                && fields[1].eq_ignore_ascii_case("mno");
            first = false;
            if header {
                continue;
            }
            let [number, mno] = <[String; 2]>::try_from(fields)
                .map_err(|f| err(line_no, PortedLineError::FieldCount(f.len())))?;
            let value = e164_value(&number)
                .ok_or_else(|| err(line_no, PortedLineError::BadNumber(number.clone())))?;
            if mno.is_empty() {
                return Err(err(line_no, PortedLineError::EmptyMno));
            }
            let idx = match index.get(&mno) {
                Some(&idx) => idx,
                None => {
                    let idx = u32::try_from(names.len()).unwrap_or(u32::MAX);
                    names.push(mno.as_str().into());
                    index.insert(mno, idx);
                    idx
                }
            };
            rows.push((value, idx, line_no));
        }
        rows.sort_unstable_by_key(|&(n, _, line)| (n, line));
        if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(err(
                w[1].2,
                PortedLineError::Duplicate {
                    number: format!("+{}", w[1].0),
                    first_line: w[0].2,
                },
            ));
        }
        Ok(PortedNumbers {
            numbers: rows.iter().map(|r| r.0).collect(),
            mno: rows.iter().map(|r| r.1).collect(),
            names,
        })
    }

    /// The network an E.164 number (`+` optional) was ported to.
    pub fn lookup(&self, e164: &str) -> Option<&str> {
        let value = e164_value(e164)?;
        let i = self.numbers.binary_search(&value).ok()?;
        let idx = *self.mno.get(i)?;
        self.names.get(idx as usize).map(|n| &**n)
    }

    /// Number of ported numbers.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// True when no number is listed.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.numbers.capacity() * 8
            + self.mno.capacity() * 4
            + self.names.iter().map(|n| n.len() + 16).sum::<usize>()
    }
}

/// `+` (optional) and 1–15 digits not starting with 0, as an integer.
fn e164_value(number: &str) -> Option<u64> {
    let digits = number.trim().strip_prefix('+').unwrap_or(number.trim());
    let ok = (1..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then(|| digits.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_only() {
        let t = PortedNumbers::from_csv_str(
            "# MNP feed\nnumber,mno\n+447700900123,Operator B\n447700900124,\"Operator, C\"\n",
        )
        .unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup("+447700900123"), Some("Operator B"));
        assert_eq!(t.lookup("447700900124"), Some("Operator, C"));
        assert_eq!(t.lookup("+44770090012"), None);
        assert_eq!(t.lookup("+4477009001230"), None);
        assert_eq!(t.lookup("anonymous"), None);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let cases = [
            ("+4477,A\n07700,B\n", 2, "invalid number"),
            ("+4477\n", 1, "expected 2 fields"),
            ("+4477,\n", 1, "empty mno"),
            ("+4477,A\n+4477,B\n", 2, "already listed on line 1"),
        ];
        for (csv, line, needle) in cases {
            match PortedNumbers::from_csv_named(csv, Path::new("mnp.csv")) {
                Err(e @ PortedError::Parse { line: l, .. }) => {
                    assert_eq!(l, line, "{csv:?}: {e}");
                    let msg = e.to_string();
                    assert!(msg.starts_with(&format!("mnp.csv: line {line}: ")), "{msg}");
                    assert!(msg.contains(needle), "{msg} lacks {needle}");
                }
                other => panic!("{csv:?} gave {other:?}"),
            }
        }
    }
}
