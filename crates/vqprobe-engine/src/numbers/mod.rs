//! Who is on the line: a signalled number normalised to E.164, its country, its type
//! and its mobile network operator.
//!
//! * [`plan`]: libphonenumber's number plans and its parse / validate / region /
//!   type logic;
//! * [`carriers`]: libphonenumber's mobile carrier prefixes;
//! * [`ported`]: individual ported numbers from the operator's MNP feed;
//! * the user's own prefix table ([`crate::mno::MnoTable`], `calls.mno_prefixes`).
//!
//! [`Numbering`] puts them together. The MNO of a number is, first match wins: the
//! MNP file's entry for the exact number, the user's prefix table (its rows win over
//! libphonenumber), libphonenumber's carrier of the range (mobile ranges only, and only
//! where libphonenumber has carrier data: not NANP, where mobile and fixed numbers
//! share area codes), else unknown. The plan and carrier data are generated from the
//! Python `phonenumbers` package by `scripts/gen-numbering-data.py` and compiled in.

pub mod carriers;
pub mod plan;
pub mod ported;

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::mno::MnoTable;
use carriers::CarrierTable;
pub use plan::{NumberPlan, NumberType, ParseError, PhoneNumber, Region};
use ported::PortedNumbers;

/// The generated number plans (see `scripts/gen-numbering-data.py`).
const PLAN_JSON: &str = include_str!("../../data/numbering-plan.json");
/// The generated carrier prefixes.
const CARRIERS_TSV: &str = include_str!("../../data/carriers.tsv");

/// The compiled-in plan, parsed once per process. A unit test keeps the data valid;
/// should it ever fail to parse, every number is simply not placed.
pub fn builtin_plan() -> Arc<NumberPlan> {
    static PLAN: OnceLock<Arc<NumberPlan>> = OnceLock::new();
    PLAN.get_or_init(|| Arc::new(NumberPlan::from_json(PLAN_JSON).unwrap_or_default()))
        .clone()
}

/// The compiled-in carrier prefixes, parsed once per process.
pub fn builtin_carriers() -> Arc<CarrierTable> {
    static TABLE: OnceLock<Arc<CarrierTable>> = OnceLock::new();
    TABLE
        .get_or_init(|| Arc::new(CarrierTable::from_tsv(CARRIERS_TSV).unwrap_or_default()))
        .clone()
}

/// The digits of a dialled number as signalled (`+` kept), visual separators
/// dropped; `None` for what is not a number (`alice`, `anonymous`, `*67`).
pub fn dialled_digits(text: &str) -> Option<String> {
    let text = text.trim();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => out.push(c),
            '+' if out.is_empty() => out.push(c),
            ' ' | '\t' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    out.bytes().any(|b| b.is_ascii_digit()).then_some(out)
}

/// Where a call's MNO came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MnoSource {
    /// The platform pushed it with the call's metadata.
    Pushed,
    /// The ported-numbers file (the operator's MNP feed) lists the number.
    Ported,
    /// A row of the user's prefix table (`calls.mno_prefixes`).
    Override,
    /// libphonenumber's carrier prefixes: the operator the range was allocated to.
    Libphonenumber,
}

/// An operator and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mno {
    /// Operator name.
    pub name: String,
    /// Which table named it.
    pub source: MnoSource,
}

/// What vqprobe knows about one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberInfo {
    /// E.164 (`+447700900123`) when the number could be placed in a country: valid
    /// in the plan, or written in international form with a known country code.
    pub e164: Option<String>,
    /// The number fits its country's plan (libphonenumber's `is_valid_number`).
    pub valid: bool,
    /// ISO 3166-1 alpha-2 country: the user's prefix row's, else the plan's.
    pub country: Option<Region>,
    /// Line type; [`NumberType::Unknown`] for a number that is not valid.
    pub number_type: NumberType,
    /// The operator, when any table names one.
    pub mno: Option<Mno>,
}

/// Number plans, carrier prefixes, the user's overrides and the default country.
#[derive(Debug, Clone)]
pub struct Numbering {
    plan: Arc<NumberPlan>,
    carriers: Arc<CarrierTable>,
    overrides: Arc<MnoTable>,
    ported: Arc<PortedNumbers>,
    default_country: Option<Region>,
}

impl Default for Numbering {
    fn default() -> Self {
        Numbering::builtin()
    }
}

impl Numbering {
    /// libphonenumber's plans and carriers, no overrides, no default country.
    pub fn builtin() -> Numbering {
        Numbering {
            plan: builtin_plan(),
            carriers: builtin_carriers(),
            overrides: Arc::new(MnoTable::default()),
            ported: Arc::new(PortedNumbers::default()),
            default_country: None,
        }
    }

    /// With the user's prefix table, whose rows win over libphonenumber's.
    pub fn with_overrides(mut self, overrides: Arc<MnoTable>) -> Numbering {
        self.overrides = overrides;
        self
    }

    /// With ported numbers, which win over every prefix.
    pub fn with_ported(mut self, ported: Arc<PortedNumbers>) -> Numbering {
        self.ported = ported;
        self
    }

    /// Reads numbers without `+` or international prefix as national numbers of
    /// this country.
    pub fn with_default_country(mut self, country: Option<Region>) -> Numbering {
        self.default_country = country;
        self
    }

    /// The plan.
    pub fn plan(&self) -> &NumberPlan {
        &self.plan
    }

    /// libphonenumber's carrier prefixes.
    pub fn carriers(&self) -> &CarrierTable {
        &self.carriers
    }

    /// The user's prefix table.
    pub fn overrides(&self) -> &MnoTable {
        &self.overrides
    }

    /// The ported numbers.
    pub fn ported(&self) -> &PortedNumbers {
        &self.ported
    }

    /// The default country.
    pub fn default_country(&self) -> Option<Region> {
        self.default_country
    }

    /// Places a number as signalled (a SIP/tel user part, `+44 20 …`, `0044…`,
    /// `011 44…`, `020 7946 0958` with a default country, E.164 digits without `+`).
    /// Without `+`, the first valid reading wins: national in the default country
    /// (libphonenumber's parse, which also takes its international prefix), then the
    /// digits after `00` or `011`, then the digits as E.164 — except that a national
    /// reading whose national form has a trunk prefix the digits lack comes after the
    /// international ones. The `bool` is whether the number is valid.
    /// `phone_context` is RFC 3966's `phone-context`: a `+` prefix there completes a
    /// local number; a domain is ignored.
    pub fn read(&self, text: &str, phone_context: Option<&str>) -> Option<(PhoneNumber, bool)> {
        let text = text.trim();
        let with_context;
        let text = match phone_context.map(str::trim) {
            Some(ctx) if ctx.starts_with('+') && !text.starts_with('+') => {
                with_context = format!("{ctx}{text}");
                with_context.as_str()
            }
            _ => text,
        };
        let plan = &*self.plan;
        let valid = |n: &PhoneNumber| plan.is_valid(n);
        let international = text
            .trim_start_matches(['(', '[', ' '])
            .starts_with(['+', '\u{FF0B}']);
        if international {
            // Explicitly international: placed even when not valid (a range newer
            // than the data, say), but never reinterpreted.
            let n = plan.parse(text, self.default_country).ok()?;
            let v = valid(&n);
            return Some((n, v));
        }
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let national = self
            .default_country
            .and_then(|c| plan.parse(text, Some(c)).ok())
            .filter(valid);
        // A national reading is taken at once when the digits are written as the
        // country writes its numbers: with the trunk prefix where its national form
        // has one ("030 901820"), without where it has none ("131 2345 6789" in
        // China, "(201) 555-0123" in the US). Digits missing a trunk prefix their
        // national form would have are more likely E.164 without "+", as SIP trunks
        // send them: "447400123456" is a UK mobile, though also a valid German
        // fixed-line number without its 0.
        if let Some(n) = &national {
            let trunk = self
                .default_country
                .and_then(|c| plan.national_prefix(c))
                .filter(|p| !p.is_empty());
            let written_with_trunk = trunk.is_some_and(|p| digits.starts_with(p));
            if written_with_trunk || !plan.national_form_has_trunk_prefix(n) {
                return Some((n.clone(), true));
            }
        }
        // International digits without "+": after the ITU's "00" or NANP's "011"
        // international prefix, or bare. Only a number valid that way is taken:
        // "1001" is an extension, not +1 001.
        let tries = [
            digits.strip_prefix("00"),
            digits.strip_prefix("011"),
            Some(digits.as_str()),
        ];
        let found = tries
            .into_iter()
            .flatten()
            .filter(|d| !d.is_empty())
            .filter_map(|d| plan.parse(&format!("+{d}"), None).ok())
            .find(valid);
        found.or(national).map(|n| (n, true))
    }

    /// Everything vqprobe knows about a number as signalled (see [`Numbering::read`]).
    pub fn classify(&self, text: &str, phone_context: Option<&str>) -> NumberInfo {
        let read = self.read(text, phone_context);
        let (e164, valid, mut country, number_type) = match &read {
            Some((n, valid)) => (
                Some(n.e164()),
                *valid,
                self.plan.region_of(n),
                if *valid {
                    self.plan.number_type(n)
                } else {
                    NumberType::Unknown
                },
            ),
            None => (None, false, None, NumberType::Unknown),
        };
        let mut mno = None;
        if let Some(e) = &e164 {
            mno = self.ported.lookup(e).map(|name| Mno {
                name: name.to_string(),
                source: MnoSource::Ported,
            });
        }
        if mno.is_none() {
            // The user's rows: on the E.164 form, else on the digits as signalled
            // (tables keyed on national formats).
            let row = e164
                .as_deref()
                .and_then(|e| self.overrides.lookup(e))
                .or_else(|| self.overrides.lookup(text));
            if let Some((name, c)) = row {
                mno = Some(Mno {
                    name: name.to_string(),
                    source: MnoSource::Override,
                });
                country = Region::parse(c).or(country);
            }
        }
        if mno.is_none() && number_type.may_have_carrier() {
            mno = e164
                .as_deref()
                .and_then(|e| self.carriers.lookup(e.trim_start_matches('+')))
                .map(|name| Mno {
                    name: name.to_string(),
                    source: MnoSource::Libphonenumber,
                });
        }
        NumberInfo {
            e164,
            valid,
            country,
            number_type,
            mno,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled-in data loads whole, every pattern compiles, and both files come
    /// from the same `phonenumbers` release.
    #[test]
    fn builtin_data_is_complete_and_consistent() {
        let plan = NumberPlan::from_json(PLAN_JSON).unwrap_or_default();
        assert!(plan.len() > 240, "{} territories", plan.len());
        assert_eq!(plan.compile_all(), Ok(()));
        let carriers = CarrierTable::from_tsv(CARRIERS_TSV).unwrap_or_default();
        assert!(carriers.len() > 25_000, "{} prefixes", carriers.len());
        let version = carriers.version().unwrap_or("none");
        assert!(
            plan.source().ends_with(&format!(" {version}")),
            "{}",
            plan.source()
        );
        for r in ["IN", "BR", "FR", "CN", "ID", "AE", "US", "GB"] {
            assert!(Region::parse(r).is_some_and(|r| plan.has_region(r)), "{r}");
        }
    }

    #[test]
    fn read_prefers_valid_readings() {
        let de = Numbering::builtin().with_default_country(Region::parse("DE"));
        let e164 = |n: &Numbering, t: &str| n.read(t, None).map(|(n, v)| (n.e164(), v));
        // Trunk prefix 0: national; without it, E.164 digits first.
        assert_eq!(e164(&de, "030 901820"), Some(("+4930901820".into(), true)));
        assert_eq!(
            e164(&de, "447400123456"),
            Some(("+447400123456".into(), true))
        );
        assert_eq!(e164(&de, "4930901820"), Some(("+4930901820".into(), true)));
        // NANP's trunk prefix is 1 and ten digits are the norm: national first,
        // although +20 15550123 is a valid Egyptian number.
        let us = Numbering::builtin().with_default_country(Region::parse("US"));
        assert_eq!(e164(&us, "2015550123"), Some(("+12015550123".into(), true)));
        assert_eq!(
            e164(&us, "011 44 7400 123456"),
            Some(("+447400123456".into(), true))
        );
        // International form: kept even when not valid; never reinterpreted.
        assert_eq!(
            e164(&de, "+44 7700 900123"),
            Some(("+447700900123".into(), false))
        );
        assert_eq!(e164(&de, "+999 1234"), None);
        assert_eq!(e164(&de, "1001"), None, "an extension");
        assert_eq!(e164(&de, "anonymous"), None);
        assert_eq!(e164(&de, "*67"), None);
        assert_eq!(
            dialled_digits(" +44 (20) 7946-0958 "),
            Some("+442079460958".into())
        );
        assert_eq!(dialled_digits("alice"), None);
    }
}
