//! libphonenumber's mobile carrier prefixes (`carriers.tsv`, generated from the Python
//! `phonenumbers` package): the carrier a range was allocated to, by longest prefix of
//! the E.164 digits.
//!
//! The table is a hash map from (prefix length, prefix value) to an index into the
//! list of distinct names; a lookup probes it once per prefix length present, longest
//! first (libphonenumber's own carrier prefixes have at most 9 digits).

use rustc_hash::FxHashMap;

/// E.164 numbers have at most 15 digits.
const MAX_DIGITS: usize = 15;

/// What is wrong with the carrier table text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// A line is not `digits<TAB>name`.
    #[error("carrier table line {line}: expected \"prefix<TAB>name\" with a 1-15 digit prefix")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// More distinct names than the index type holds.
    #[error("carrier table has more than {} names", u32::MAX)]
    TooManyNames,
}

/// Longest-prefix table of carrier names.
#[derive(Debug, Clone, Default)]
pub struct CarrierTable {
    names: Vec<Box<str>>,
    /// `(value << 4) | length` → index into `names`.
    prefixes: FxHashMap<u64, u32>,
    /// Bit `n` set: some prefix has `n` digits.
    lengths: u16,
    version: Option<String>,
}

fn key(value: u64, len: usize) -> u64 {
    (value << 4) | len as u64
}

impl CarrierTable {
    /// Reads `prefix<TAB>name` lines; `#` lines are comments, and a comment
    /// `# phonenumbers X.Y.Z` records the version the table came from.
    pub fn from_tsv(text: &str) -> Result<CarrierTable, CarrierError> {
        let mut table = CarrierTable::default();
        let mut name_index: FxHashMap<&str, u32> = FxHashMap::default();
        for (i, line) in text.lines().enumerate() {
            if let Some(comment) = line.strip_prefix('#') {
                if let Some(v) = comment.trim().strip_prefix("phonenumbers ") {
                    table.version = Some(v.trim().to_string());
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let bad = || CarrierError::BadLine { line: i + 1 };
            let (prefix, name) = line.split_once('\t').ok_or_else(bad)?;
            if prefix.is_empty()
                || prefix.len() > MAX_DIGITS
                || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            let value: u64 = prefix.parse().map_err(|_| bad())?;
            let idx = match name_index.get(name) {
                Some(&idx) => idx,
                None => {
                    let idx =
                        u32::try_from(table.names.len()).map_err(|_| CarrierError::TooManyNames)?;
                    table.names.push(name.into());
                    name_index.insert(name, idx);
                    idx
                }
            };
            table.prefixes.insert(key(value, prefix.len()), idx);
            table.lengths |= 1 << prefix.len();
        }
        Ok(table)
    }

    /// The carrier of the longest prefix of `digits` (E.164 digits without `+`).
    /// An empty name in the data means "no carrier" and is returned as `None`, as
    /// libphonenumber returns an empty string.
    pub fn lookup(&self, digits: &str) -> Option<&str> {
        let bytes = digits.as_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let max = bytes.len().min(MAX_DIGITS);
        // Prefix values of every length, computed once.
        let mut values = [0u64; MAX_DIGITS + 1];
        for (i, b) in bytes.iter().take(max).enumerate() {
            values[i + 1] = values[i] * 10 + u64::from(b - b'0');
        }
        (1..=max)
            .rev()
            .filter(|len| self.lengths & (1 << len) != 0)
            .find_map(|len| self.prefixes.get(&key(values[len], len)))
            .and_then(|&idx| self.names.get(idx as usize))
            .map(|n| &**n)
            .filter(|n| !n.is_empty())
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// True for a table without prefixes.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Number of distinct carrier names.
    pub fn names(&self) -> usize {
        self.names.len()
    }

    /// The `phonenumbers` version recorded in the table.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Calling codes with at least one carrier prefix (a prefix's calling code is
    /// found with `is_code`, which knows the plan's codes).
    pub fn calling_codes(&self, is_code: impl Fn(u16) -> bool) -> Vec<u16> {
        let mut codes: Vec<u16> = self
            .prefixes
            .keys()
            .filter_map(|&k| {
                let len = (k & 0xf) as u32;
                let value = k >> 4;
                (1..=3u32.min(len)).find_map(|cl| {
                    let code = value / 10u64.pow(len - cl);
                    u16::try_from(code).ok().filter(|&c| is_code(c))
                })
            })
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    /// Approximate heap bytes held: the hash table's slots and the names.
    pub fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, u32)>() + 1;
        self.prefixes.capacity() * slot
            + self.names.capacity() * std::mem::size_of::<Box<str>>()
            + self.names.iter().map(|n| n.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let t =
            CarrierTable::from_tsv("# phonenumbers 1.2.3\n447\tBroad\n44770\tNarrow\n4477009\t\n")
                .unwrap_or_default();
        assert_eq!(t.version(), Some("1.2.3"));
        assert_eq!(t.len(), 3);
        assert_eq!(t.names(), 3);
        assert_eq!(t.lookup("447712345678"), Some("Broad"));
        assert_eq!(t.lookup("447701234567"), Some("Narrow"));
        // An empty name blocks the shorter prefixes, as libphonenumber's "" does.
        assert_eq!(t.lookup("447700912345"), None);
        assert_eq!(t.lookup("4420"), None);
        assert_eq!(t.lookup(""), None);
        assert_eq!(t.lookup("+447712345678"), None, "digits only");
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line) in [
            ("1\tA\n12 B\n", 2),
            ("x1\tA\n", 1),
            ("1234567890123456\tA\n", 1),
        ] {
            assert_eq!(
                CarrierTable::from_tsv(text).map(|_| ()),
                Err(CarrierError::BadLine { line }),
                "{text:?}"
            );
        }
    }
}
