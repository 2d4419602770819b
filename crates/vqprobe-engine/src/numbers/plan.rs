//! The world's number plans, as Google's libphonenumber keeps them, and the part of its
//! logic a probe needs: parsing a dialled or signalled number (international, with an
//! international dialling prefix, or national with a default country), validating it,
//! and telling its country and its type.
//!
//! The data is generated from the Python port `phonenumbers` by
//! `scripts/gen-numbering-data.py`; the functions below follow that package's
//! `phonenumberutil` step for step (`parse`, `_maybe_extract_country_code`,
//! `_maybe_strip_national_prefix_carrier_code`, `_test_number_length`,
//! `_number_type_helper`, `region_code_for_number`), so that for the same data they
//! give the same answers — which the tests check against the package itself. What is
//! left out: formatting, vanity numbers (letters are not a number here: a SIP user
//! called `alice` must not become one) and extensions.
//!
//! Patterns are compiled per territory on first use, so a probe that only ever sees
//! a few countries compiles a few countries' patterns.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

/// Shortest national significant number libphonenumber accepts.
const MIN_LENGTH_FOR_NSN: usize = 2;
/// Longest national significant number libphonenumber accepts.
const MAX_LENGTH_FOR_NSN: usize = 17;
/// Country calling codes have 1 to 3 digits.
const MAX_LENGTH_COUNTRY_CODE: usize = 3;
/// Longer input is not a phone number (libphonenumber's limit).
const MAX_INPUT_LENGTH: usize = 250;

/// An ISO 3166-1 alpha-2 region code (`GB`, `IN`), upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region([u8; 2]);

impl Region {
    /// Parses a two-letter code, any case.
    pub fn parse(code: &str) -> Option<Region> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Region([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code, e.g. `"GB"`.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of line a number belongs to, in libphonenumber's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NumberType {
    /// Geographic fixed line.
    FixedLine,
    /// Mobile.
    Mobile,
    /// Fixed line and mobile share the ranges (e.g. NANP): cannot tell.
    FixedLineOrMobile,
    /// Freephone.
    TollFree,
    /// Premium rate.
    PremiumRate,
    /// Shared cost.
    SharedCost,
    /// VoIP.
    Voip,
    /// Personal number (follow-me).
    PersonalNumber,
    /// Pager.
    Pager,
    /// Universal access number (a company's number, routed anywhere).
    Uan,
    /// Voicemail access.
    Voicemail,
    /// Not a valid number of any type.
    Unknown,
}

impl NumberType {
    /// The snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberType::FixedLine => "fixed_line",
            NumberType::Mobile => "mobile",
            NumberType::FixedLineOrMobile => "fixed_line_or_mobile",
            NumberType::TollFree => "toll_free",
            NumberType::PremiumRate => "premium_rate",
            NumberType::SharedCost => "shared_cost",
            NumberType::Voip => "voip",
            NumberType::PersonalNumber => "personal_number",
            NumberType::Pager => "pager",
            NumberType::Uan => "uan",
            NumberType::Voicemail => "voicemail",
            NumberType::Unknown => "unknown",
        }
    }

    /// Whether libphonenumber names a carrier for numbers of this type: its carrier
    /// data covers mobile ranges only.
    pub fn may_have_carrier(self) -> bool {
        matches!(
            self,
            NumberType::Mobile | NumberType::FixedLineOrMobile | NumberType::Pager
        )
    }
}

/// Why text is not a phone number (libphonenumber's `NumberParseException` kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Letters or symbols, or too few digits.
    #[error("not a phone number")]
    NotANumber,
    /// International form with an unknown country code, or national form without a
    /// default country.
    #[error("no known country calling code, and no default country to read it in")]
    InvalidCountryCode,
    /// An international prefix followed by too few digits.
    #[error("too short after the international prefix")]
    TooShortAfterIdd,
    /// Fewer than two digits after the country code.
    #[error("too short to be a phone number")]
    TooShortNsn,
    /// More than 17 digits after the country code.
    #[error("too long to be a phone number")]
    TooLong,
}

/// A number the plan could read: its country calling code and national significant
/// number (national prefix removed). Not necessarily valid: see
/// [`NumberPlan::is_valid`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    /// Country calling code (`44`).
    pub country_code: u16,
    /// National significant number, digits only (`7700900123`).
    pub national: String,
}

impl PhoneNumber {
    /// E.164: `+`, country code, national significant number.
    pub fn e164(&self) -> String {
        format!("+{}{}", self.country_code, self.national)
    }
}

/// Why the plan data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The JSON does not have the expected shape.
    #[error("numbering plan data: {0}")]
    Json(#[from] serde_json::Error),
    /// A country code in the code table has no territory, or a region code is bad.
    #[error("numbering plan data: {0}")]
    Inconsistent(String),
}

/// The generated file, as written by `scripts/gen-numbering-data.py`.
#[derive(Deserialize)]
struct PlanFile {
    source: String,
    country_codes: BTreeMap<u16, Vec<String>>,
    territories: Vec<TerritoryData>,
}

#[derive(Deserialize)]
struct TerritoryData {
    id: String,
    country_code: u16,
    international_prefix: Option<String>,
    national_prefix: Option<String>,
    national_prefix_for_parsing: Option<String>,
    national_prefix_transform_rule: Option<String>,
    leading_digits: Option<String>,
    same_mobile_and_fixed_line_pattern: bool,
    general: DescData,
    premium_rate: Option<DescData>,
    toll_free: Option<DescData>,
    shared_cost: Option<DescData>,
    voip: Option<DescData>,
    personal_number: Option<DescData>,
    pager: Option<DescData>,
    uan: Option<DescData>,
    voicemail: Option<DescData>,
    fixed_line: Option<DescData>,
    mobile: Option<DescData>,
    national_formats: Vec<FormatData>,
}

/// A national format: which numbers it formats, and whether it writes the trunk
/// prefix.
#[derive(Deserialize)]
struct FormatData {
    pattern: String,
    leading_digits: Option<String>,
    trunk_prefix: bool,
}

#[derive(Deserialize)]
struct DescData {
    pattern: String,
    lengths: Vec<i16>,
    local_lengths: Vec<i16>,
}

/// A number type's description, compiled.
struct Desc {
    /// The national number pattern, anchored at both ends.
    full: Regex,
    lengths: Vec<i16>,
    local_lengths: Vec<i16>,
}

impl Desc {
    fn compile(d: &DescData) -> Result<Desc, regex::Error> {
        Ok(Desc {
            full: full_regex(&d.pattern)?,
            lengths: d.lengths.clone(),
            local_lengths: d.local_lengths.clone(),
        })
    }

    /// libphonenumber's `_is_number_matching_desc`: a possible length, then the pattern.
    fn matches(&self, national: &str) -> bool {
        let len = i16::try_from(national.len()).unwrap_or(i16::MAX);
        if !self.lengths.is_empty() && !self.lengths.contains(&len) {
            return false;
        }
        self.full.is_match(national)
    }
}

/// One territory's patterns, compiled.
struct Compiled {
    country_code: u16,
    /// Replacement for the national prefix match (`${1}` group syntax).
    transform: Option<String>,
    /// International dialling prefix, anchored at the start.
    idd: Option<Regex>,
    /// National prefix (and carrier code) for parsing, anchored at the start.
    npp: Option<Regex>,
    /// Leading digits that pick this territory among those sharing a calling code.
    leading_digits: Option<Regex>,
    general: Desc,
    /// Premium, toll free, shared cost, VoIP, personal, pager, UAN, voicemail: the
    /// order libphonenumber tests them in.
    special: Vec<(NumberType, Desc)>,
    fixed_line: Option<Desc>,
    mobile: Option<Desc>,
    /// Fixed-line and mobile numbers share one pattern (NANP): tell neither.
    same_fixed_mobile: bool,
    /// National formats: leading digits (anchored at the start), pattern (whole),
    /// whether the trunk prefix is written.
    formats: Vec<(Option<Regex>, Regex, bool)>,
}

/// One territory (a region, or a non-geographic calling code such as +800).
struct Territory {
    data: TerritoryData,
    /// ISO code; `None` for a non-geographic entity (libphonenumber's "001").
    region: Option<Region>,
    compiled: OnceLock<Option<Compiled>>,
}

impl Territory {
    /// The compiled patterns; `None` if one does not compile (then the territory
    /// behaves as if it had no data; a test keeps every shipped pattern compiling).
    fn compiled(&self) -> Option<&Compiled> {
        self.compiled.get_or_init(|| self.compile().ok()).as_ref()
    }

    fn compile(&self) -> Result<Compiled, regex::Error> {
        let d = &self.data;
        let opt = |p: &Option<String>| -> Result<Option<Regex>, regex::Error> {
            p.as_deref().map(prefix_regex).transpose()
        };
        let desc = |p: &Option<DescData>| p.as_ref().map(Desc::compile).transpose();
        let mut special = Vec::new();
        for (kind, data) in [
            (NumberType::PremiumRate, &d.premium_rate),
            (NumberType::TollFree, &d.toll_free),
            (NumberType::SharedCost, &d.shared_cost),
            (NumberType::Voip, &d.voip),
            (NumberType::PersonalNumber, &d.personal_number),
            (NumberType::Pager, &d.pager),
            (NumberType::Uan, &d.uan),
            (NumberType::Voicemail, &d.voicemail),
        ] {
            if let Some(desc) = desc(data)? {
                special.push((kind, desc));
            }
        }
        Ok(Compiled {
            country_code: d.country_code,
            transform: d.national_prefix_transform_rule.clone(),
            idd: opt(&d.international_prefix)?,
            npp: opt(&d.national_prefix_for_parsing)?,
            leading_digits: opt(&d.leading_digits)?,
            general: Desc::compile(&d.general)?,
            special,
            fixed_line: desc(&d.fixed_line)?,
            mobile: desc(&d.mobile)?,
            same_fixed_mobile: d.same_mobile_and_fixed_line_pattern,
            formats: d
                .national_formats
                .iter()
                .map(|f| {
                    Ok((
                        f.leading_digits.as_deref().map(prefix_regex).transpose()?,
                        full_regex(&f.pattern)?,
                        f.trunk_prefix,
                    ))
                })
                .collect::<Result<_, regex::Error>>()?,
        })
    }
}

fn full_regex(pattern: &str) -> Result<Regex, regex::Error> {
    ascii_regex(&format!("^(?:{pattern})$"))
}

/// Python's `re.match`: anchored at the start only.
fn prefix_regex(pattern: &str) -> Result<Regex, regex::Error> {
    ascii_regex(&format!("^(?:{pattern})"))
}

/// Numbers reach the patterns as ASCII digits only, so `\d` need not be Unicode's
/// 60-odd digit ranges: ASCII classes make the compiled patterns several times
/// smaller.
fn ascii_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern).unicode(false).build()
}

/// Result of libphonenumber's `_test_number_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Possible,
    PossibleLocalOnly,
    TooShort,
    Invalid,
    TooLong,
}

/// Where a country code was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CcSource {
    Plus,
    Idd,
    DefaultCountry,
}

/// Every country's number plan.
pub struct NumberPlan {
    source: String,
    territories: Vec<Territory>,
    /// Calling code → territories, main one first (libphonenumber's
    /// `COUNTRY_CODE_TO_REGION_CODE`).
    by_code: HashMap<u16, Vec<usize>>,
    by_region: HashMap<Region, usize>,
}

impl Default for NumberPlan {
    /// A plan without territories: nothing is a number.
    fn default() -> Self {
        NumberPlan {
            source: "none".to_string(),
            territories: Vec::new(),
            by_code: HashMap::new(),
            by_region: HashMap::new(),
        }
    }
}

impl fmt::Debug for NumberPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NumberPlan")
            .field("source", &self.source)
            .field("territories", &self.territories.len())
            .finish()
    }
}

impl NumberPlan {
    /// Reads the generated plan (`numbering-plan.json`).
    pub fn from_json(text: &str) -> Result<NumberPlan, PlanError> {
        let file: PlanFile = serde_json::from_str(text)?;
        let mut territories = Vec::with_capacity(file.territories.len());
        let mut by_region = HashMap::new();
        let mut nongeo = HashMap::new();
        for (i, data) in file.territories.into_iter().enumerate() {
            let region = if data.id == "001" {
                nongeo.insert(data.country_code, i);
                None
            } else {
                let r = Region::parse(&data.id)
                    .ok_or_else(|| PlanError::Inconsistent(format!("bad region {}", data.id)))?;
                by_region.insert(r, i);
                Some(r)
            };
            territories.push(Territory {
                data,
                region,
                compiled: OnceLock::new(),
            });
        }
        let mut by_code = HashMap::new();
        for (code, regions) in file.country_codes {
            let mut list = Vec::with_capacity(regions.len());
            for id in regions {
                let idx = if id == "001" {
                    nongeo.get(&code).copied()
                } else {
                    Region::parse(&id).and_then(|r| by_region.get(&r).copied())
                };
                let idx = idx.ok_or_else(|| {
                    PlanError::Inconsistent(format!("+{code}: no territory {id}"))
                })?;
                if territories.get(idx).map(|t| t.data.country_code) != Some(code) {
                    return Err(PlanError::Inconsistent(format!(
                        "+{code}: {id} has another code"
                    )));
                }
                list.push(idx);
            }
            by_code.insert(code, list);
        }
        Ok(NumberPlan {
            source: file.source,
            territories,
            by_code,
            by_region,
        })
    }

    /// Where the data came from (`libphonenumber via Python phonenumbers 9.0.43`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Number of territories (regions and non-geographic codes).
    pub fn len(&self) -> usize {
        self.territories.len()
    }

    /// True for a plan without territories.
    pub fn is_empty(&self) -> bool {
        self.territories.is_empty()
    }

    /// Whether the plan knows this region.
    pub fn has_region(&self, region: Region) -> bool {
        self.by_region.contains_key(&region)
    }

    /// Every region the plan covers.
    pub fn regions(&self) -> impl Iterator<Item = Region> + '_ {
        self.territories.iter().filter_map(|t| t.region)
    }

    /// The trunk prefix a region's national numbers are dialled with (`0` in most
    /// of the world, `1` in NANP, none in Spain or Italy).
    pub fn national_prefix(&self, region: Region) -> Option<&str> {
        self.territory_of(region)
            .and_then(|t| t.data.national_prefix.as_deref())
    }

    /// The calling code of a region.
    pub fn country_code_of(&self, region: Region) -> Option<u16> {
        self.territory_of(region).map(|t| t.data.country_code)
    }

    /// Compiles every territory's patterns now (the probe compiles them on first use);
    /// the first that fails, with its error. For tests, benches and refreshed data.
    pub fn compile_all(&self) -> Result<(), String> {
        for t in &self.territories {
            if t.compiled().is_none() {
                let why = t.compile().err().map(|e| e.to_string()).unwrap_or_default();
                return Err(format!("{}: {why}", t.data.id));
            }
        }
        Ok(())
    }

    fn territory_of(&self, region: Region) -> Option<&Territory> {
        self.by_region
            .get(&region)
            .and_then(|&i| self.territories.get(i))
    }

    /// The main territory of a calling code (libphonenumber's
    /// `region_code_for_country_code`, then its metadata).
    fn main_territory(&self, code: u16) -> Option<&Territory> {
        self.by_code
            .get(&code)
            .and_then(|l| l.first())
            .and_then(|&i| self.territories.get(i))
    }

    /// Reads `text` as a phone number, as libphonenumber's `parse(text, region)`:
    /// `+` and a country code; the `region`'s international prefix (`00`, `011`…)
    /// and a country code; the region's own country code without `+`; or a national
    /// number of `region`, national prefix removed. Visual separators (spaces,
    /// `-`, `.`, `/`, brackets) are ignored; letters make it not a number.
    pub fn parse(&self, text: &str, region: Option<Region>) -> Result<PhoneNumber, ParseError> {
        let (plus, digits) = clean(text)?;
        // `_check_region_for_parsing`: without `+` a known default region is needed.
        let meta = region.and_then(|r| self.territory_of(r));
        if !plus && meta.is_none() {
            return Err(ParseError::InvalidCountryCode);
        }
        let meta = meta.and_then(Territory::compiled);
        let (code, national) = match self.maybe_extract_country_code(plus, &digits, meta) {
            Ok(found) => found,
            Err(ParseError::InvalidCountryCode) if plus => {
                // `+` and an unknown code: read the digits without the plus.
                let found = self.maybe_extract_country_code(false, &digits, meta)?;
                if found.0 == 0 {
                    return Err(ParseError::InvalidCountryCode);
                }
                found
            }
            Err(e) => return Err(e),
        };
        let (code, mut national, meta) = if code != 0 {
            let meta = self.main_territory(code).and_then(Territory::compiled);
            (code, national, meta)
        } else {
            let code = region
                .and_then(|r| self.territory_of(r))
                .map_or(0, |t| t.data.country_code);
            (code, digits, meta)
        };
        if national.len() < MIN_LENGTH_FOR_NSN {
            return Err(ParseError::TooShortNsn);
        }
        if let Some(m) = meta {
            // Keep the national prefix when what remains would be too short for the
            // region: the number may be a valid short number.
            let (stripped, _) = strip_national_prefix(&national, m);
            if !matches!(
                test_length(&stripped, m),
                Length::TooShort | Length::PossibleLocalOnly | Length::Invalid
            ) {
                national = stripped;
            }
        }
        if national.len() < MIN_LENGTH_FOR_NSN {
            return Err(ParseError::TooShortNsn);
        }
        if national.len() > MAX_LENGTH_FOR_NSN {
            return Err(ParseError::TooLong);
        }
        Ok(PhoneNumber {
            country_code: code,
            national,
        })
    }

    /// libphonenumber's `_maybe_extract_country_code`: `(0, "")` when the number is
    /// not in international form.
    fn maybe_extract_country_code(
        &self,
        plus: bool,
        digits: &str,
        meta: Option<&Compiled>,
    ) -> Result<(u16, String), ParseError> {
        if digits.is_empty() {
            return Ok((0, String::new()));
        }
        let (source, full) = if plus {
            (CcSource::Plus, digits)
        } else {
            match meta
                .and_then(|m| m.idd.as_ref())
                .and_then(|re| re.find(digits))
            {
                // Country codes never start with 0: "0" after the prefix means the
                // prefix was something else.
                Some(m) if !digits[m.end()..].starts_with('0') => {
                    (CcSource::Idd, &digits[m.end()..])
                }
                _ => (CcSource::DefaultCountry, digits),
            }
        };
        if source != CcSource::DefaultCountry {
            if full.len() <= MIN_LENGTH_FOR_NSN {
                return Err(ParseError::TooShortAfterIdd);
            }
            let (code, rest) = self.extract_country_code(full);
            if code != 0 {
                return Ok((code, rest.to_string()));
            }
            return Err(ParseError::InvalidCountryCode);
        }
        if let Some(m) = meta {
            let code = m.country_code.to_string();
            if let Some(rest) = full.strip_prefix(code.as_str()) {
                let (potential, _) = strip_national_prefix(rest, m);
                // The region's own code without "+": take it as such if the number
                // only fits the plan that way, or is too long with it.
                if (!m.general.full.is_match(full) && m.general.full.is_match(&potential))
                    || test_length(full, m) == Length::TooLong
                {
                    return Ok((m.country_code, potential));
                }
            }
        }
        Ok((0, String::new()))
    }

    /// libphonenumber's `_extract_country_code`: the first 1–3 digits that are a
    /// known calling code.
    fn extract_country_code<'a>(&self, number: &'a str) -> (u16, &'a str) {
        if number.starts_with('0') {
            return (0, number);
        }
        for len in 1..=MAX_LENGTH_COUNTRY_CODE.min(number.len()) {
            if let Some(code) = number.get(..len).and_then(|p| p.parse::<u16>().ok()) {
                if self.by_code.contains_key(&code) {
                    return (code, number.get(len..).unwrap_or(""));
                }
            }
        }
        (0, number)
    }

    /// The territory a number belongs to (libphonenumber's `region_code_for_number`):
    /// the only one of its calling code, or among those sharing it (NANP, +44, +7…)
    /// the first whose leading digits or number patterns fit.
    fn territory_for(&self, n: &PhoneNumber) -> Option<&Territory> {
        let list = self.by_code.get(&n.country_code)?;
        if let [only] = list.as_slice() {
            return self.territories.get(*only);
        }
        list.iter()
            .filter_map(|&i| self.territories.get(i))
            .find(|t| {
                let Some(c) = t.compiled() else {
                    return false;
                };
                match &c.leading_digits {
                    Some(ld) => ld.is_match(&n.national),
                    None => number_type_in(&n.national, c) != NumberType::Unknown,
                }
            })
    }

    /// The ISO region of a number (`None` for non-geographic codes such as +800, and
    /// for shared codes when no territory's plan fits).
    pub fn region_of(&self, n: &PhoneNumber) -> Option<Region> {
        self.territory_for(n).and_then(|t| t.region)
    }

    /// The number's type; [`NumberType::Unknown`] when it is not valid.
    pub fn number_type(&self, n: &PhoneNumber) -> NumberType {
        self.territory_for(n)
            .and_then(Territory::compiled)
            .map_or(NumberType::Unknown, |c| number_type_in(&n.national, c))
    }

    /// Whether the national form of the number writes the trunk prefix (`030 901820`
    /// in Germany, `07400 123456` in the UK; not `131 2345 6789` in China nor
    /// `(201) 555-0123` in the US): libphonenumber's national format of it (the
    /// first format of the calling code's main territory whose leading digits and
    /// pattern fit) has a formatting rule with the national prefix.
    pub fn national_form_has_trunk_prefix(&self, n: &PhoneNumber) -> bool {
        let Some(c) = self
            .main_territory(n.country_code)
            .and_then(Territory::compiled)
        else {
            return false;
        };
        c.formats
            .iter()
            .find(|(ld, pattern, _)| {
                ld.as_ref().is_none_or(|ld| ld.is_match(&n.national))
                    && pattern.is_match(&n.national)
            })
            .is_some_and(|&(_, _, trunk)| trunk)
    }

    /// Whether the number fits its territory's plan (libphonenumber's
    /// `is_valid_number`).
    pub fn is_valid(&self, n: &PhoneNumber) -> bool {
        self.number_type(n) != NumberType::Unknown
    }
}

/// libphonenumber's `_number_type_helper`.
fn number_type_in(national: &str, c: &Compiled) -> NumberType {
    if !c.general.matches(national) {
        return NumberType::Unknown;
    }
    if let Some((kind, _)) = c.special.iter().find(|(_, d)| d.matches(national)) {
        return *kind;
    }
    let same = c.same_fixed_mobile;
    if c.fixed_line.as_ref().is_some_and(|d| d.matches(national)) {
        if same || c.mobile.as_ref().is_some_and(|d| d.matches(national)) {
            return NumberType::FixedLineOrMobile;
        }
        return NumberType::FixedLine;
    }
    if !same && c.mobile.as_ref().is_some_and(|d| d.matches(national)) {
        return NumberType::Mobile;
    }
    NumberType::Unknown
}

/// libphonenumber's `_maybe_strip_national_prefix_carrier_code`, without the
/// carrier code: the number with its national prefix removed (or transformed), and
/// whether anything was removed. Nothing is removed when that would turn a number
/// that fits the plan into one that does not.
fn strip_national_prefix(number: &str, m: &Compiled) -> (String, bool) {
    let unchanged = || (number.to_string(), false);
    let Some(npp) = &m.npp else {
        return unchanged();
    };
    if number.is_empty() {
        return unchanged();
    }
    let Some(caps) = npp.captures(number) else {
        return unchanged();
    };
    let Some(whole) = caps.get(0) else {
        return unchanged();
    };
    let viable_before = m.general.full.is_match(number);
    let groups = caps.len() - 1;
    let rule = m.transform.as_deref().filter(|r| !r.is_empty());
    let last_group_matched = groups > 0 && caps.get(groups).is_some();
    // With a transform rule whose last group took part, the prefix is rewritten
    // (e.g. Argentina's "0xx15" mobile prefix); otherwise it is cut off.
    let result = match rule {
        Some(rule) if last_group_matched => npp.replacen(number, 1, rule).into_owned(),
        _ => number.get(whole.end()..).unwrap_or("").to_string(),
    };
    if viable_before && !m.general.full.is_match(&result) {
        return unchanged();
    }
    (result, true)
}

/// libphonenumber's `_test_number_length` for any type (the general description).
fn test_length(number: &str, m: &Compiled) -> Length {
    let len = i16::try_from(number.len()).unwrap_or(i16::MAX);
    let possible = &m.general.lengths;
    if m.general.local_lengths.contains(&len) {
        return Length::PossibleLocalOnly;
    }
    let (Some(&min), Some(&max)) = (possible.first(), possible.last()) else {
        return Length::Invalid;
    };
    if len == min {
        Length::Possible
    } else if len < min {
        Length::TooShort
    } else if len > max {
        Length::TooLong
    } else if possible.contains(&len) {
        Length::Possible
    } else {
        Length::Invalid
    }
}

/// The `+` and digits of text that may be a phone number; visual separators are
/// dropped (RFC 3966 §5.1.1's `-` `.` `(` `)`, spaces, `/`, `[` `]`, `~` and
/// their Unicode dashes and spaces). Anything else is not a number.
fn clean(text: &str) -> Result<(bool, String), ParseError> {
    if text.len() > MAX_INPUT_LENGTH {
        return Err(ParseError::TooLong);
    }
    let text = text.trim();
    let mut digits = String::with_capacity(text.len());
    let mut plus = false;
    let mut separators = false;
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            // Plus signs before the first digit ("(+44) 20…" and "++44" included).
            '+' | '\u{FF0B}' if digits.is_empty() => plus = true,
            ' '
            | '\t'
            | '-'
            | '.'
            | '('
            | ')'
            | '/'
            | '['
            | ']'
            | '~'
            | '\u{00A0}'
            | '\u{2010}'..='\u{2015}'
            | '\u{2212}'
            | '\u{3000}'
            | '\u{FF0D}' => {
                separators = true;
            }
            _ => return Err(ParseError::NotANumber),
        }
    }
    // libphonenumber's viability test: two bare digits, or three digits or more.
    let viable = digits.len() >= 3 || (digits.len() == 2 && !plus && !separators);
    if viable {
        Ok((plus, digits))
    } else {
        Err(ParseError::NotANumber)
    }
}
