//! `vqprobe number`: what vqprobe makes of a number — E.164, validity, country, line
//! type and MNO, with the table that named it — so a NOC engineer can check a number
//! (or a SIP/tel URI) against the same data the probe uses on calls.

use serde::Serialize;
use vqprobe_engine::numbers::{MnoSource, NumberType, Numbering};
use vqprobe_wire::sip::{is_withheld_name, uri_user};

/// What vqprobe knows about one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumberReport {
    /// As given.
    pub input: String,
    /// E.164, when the number could be placed in a country.
    pub e164: Option<String>,
    /// It fits its country's plan.
    pub valid: bool,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// Line type.
    #[serde(rename = "type")]
    pub number_type: NumberType,
    /// Operator, `unknown` when no table names one.
    pub mno: String,
    /// Which table named it.
    pub mno_source: Option<MnoSource>,
    /// A withheld-identity user part (`anonymous`, `restricted`…).
    pub anonymous: bool,
}

/// Describes `input`: a number in any format, or a `sip:`/`sips:`/`tel:` URI.
pub fn describe(numbering: &Numbering, input: &str) -> NumberReport {
    let uri = uri_user(input);
    let (text, context) = match &uri {
        Some(u) => (u.user.as_ref(), u.phone_context.as_deref()),
        None => (input, None),
    };
    let info = numbering.classify(text, context);
    let (mno, mno_source) = match info.mno {
        Some(m) => (m.name, Some(m.source)),
        None => ("unknown".to_string(), None),
    };
    NumberReport {
        input: input.to_string(),
        e164: info.e164,
        valid: info.valid,
        country: info.country.map(|c| c.to_string()),
        number_type: info.number_type,
        mno,
        mno_source,
        anonymous: is_withheld_name(text)
            || uri
                .as_ref()
                .and_then(|u| u.host)
                .is_some_and(|h| h.eq_ignore_ascii_case("anonymous.invalid")),
    }
}

/// One block of `key  value` lines per number.
pub fn table(reports: &[NumberReport], numbering: &Numbering) -> String {
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let source = match r.mno_source {
            Some(MnoSource::Ported) => " (ported numbers file)",
            Some(MnoSource::Override) => " (your prefix table)",
            Some(MnoSource::Libphonenumber) => " (libphonenumber: range holder)",
            Some(MnoSource::Pushed) => " (pushed)",
            None => "",
        };
        let lines = [
            ("number", r.input.clone()),
            ("e164", r.e164.clone().unwrap_or_else(|| "-".into())),
            ("valid", r.valid.to_string()),
            ("country", r.country.clone().unwrap_or_else(|| "-".into())),
            ("type", r.number_type.as_str().to_string()),
            ("mno", format!("{}{source}", r.mno)),
        ];
        for (k, v) in lines {
            out.push_str(&format!("{k:<9}{v}\n"));
        }
        if r.anonymous {
            out.push_str(&format!("{:<9}{}\n", "withheld", "yes (anonymous caller)"));
        }
        if r.e164.is_none() && !r.anonymous {
            out.push_str(&format!(
                "{:<9}{}\n",
                "note",
                "not placed: not a number, an extension or short code, or a national \
                 number without --default-country"
            ));
        }
    }
    out.push_str(&format!("\ndata     {}", numbering.plan().source()));
    if let Some(c) = numbering.default_country() {
        out.push_str(&format!("; default country {c}"));
    }
    out.push('\n');
    out
}
