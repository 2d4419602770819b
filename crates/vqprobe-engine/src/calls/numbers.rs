//! The numbers of a call record: caller and callee (pushed metadata wins over SIP)
//! normalised to E.164, the raw user parts kept, the diverting number, whether the
//! caller withheld their identity, and the MNO and country of the remote party.

use vqprobe_wire::sip::Party;

use crate::numbers::{MnoSource, Numbering};
use crate::push::PushedCall;
use crate::record::Direction;
use crate::signal::Parties;

/// What the record says about the parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallNumbers {
    /// Caller: E.164, else the dialled digits.
    pub from_number: Option<String>,
    /// Callee: E.164, else the dialled digits.
    pub to_number: Option<String>,
    /// Caller's user part as signalled or pushed.
    pub from_raw: Option<String>,
    /// Callee's user part as signalled or pushed.
    pub to_raw: Option<String>,
    /// The caller withheld their identity.
    pub from_anonymous: bool,
    /// The number the call was diverted from.
    pub diverted_from: Option<String>,
    /// Operator of the remote party, `unknown` when no table names one.
    pub mno: String,
    /// Which table named it.
    pub mno_source: Option<MnoSource>,
    /// ISO country of the remote party.
    pub country: Option<String>,
}

/// A user part or pushed number with its RFC 3966 phone-context.
type Raw<'a> = (&'a str, Option<&'a str>);

fn signalled(p: Option<&Party>) -> Option<Raw<'_>> {
    p.map(|p| (p.user.as_str(), p.phone_context.as_deref()))
}

fn pushed(n: Option<&String>) -> Option<Raw<'_>> {
    n.map(|n| (n.as_str(), None))
}

/// The record's numbers for a call whose remote party is on the `direction` side.
pub fn call_numbers(
    numbering: &Numbering,
    parties: Option<&Parties>,
    meta: Option<&PushedCall>,
    direction: Direction,
) -> CallNumbers {
    let from = pushed(meta.and_then(|m| m.from_number.as_ref()))
        .or_else(|| signalled(parties.and_then(|p| p.caller.as_ref())));
    let to = pushed(meta.and_then(|m| m.to_number.as_ref()))
        .or_else(|| signalled(parties.and_then(|p| p.callee.as_ref())));
    let diversion = signalled(parties.and_then(|p| p.diversion.as_ref()));

    let (remote, local) = match direction {
        Direction::Inbound => (from, to),
        Direction::Outbound => (to, from),
    };
    let remote_info = remote.map(|(text, ctx)| numbering.classify(text, ctx));
    let number = |raw: Option<Raw<'_>>| -> Option<String> {
        let (text, ctx) = raw?;
        numbering
            .read(text, ctx)
            .map(|(n, _)| n.e164())
            .or_else(|| crate::numbers::dialled_digits(text))
    };
    let remote_number = remote_info
        .as_ref()
        .and_then(|i| i.e164.clone())
        .or_else(|| remote.and_then(|(text, _)| crate::numbers::dialled_digits(text)));
    let local_number = number(local);
    let (from_number, to_number) = match direction {
        Direction::Inbound => (remote_number, local_number),
        Direction::Outbound => (local_number, remote_number),
    };

    let (mut mno, mut mno_source) = match remote_info.as_ref().and_then(|i| i.mno.clone()) {
        Some(m) => (m.name, Some(m.source)),
        None => ("unknown".to_string(), None),
    };
    // An explicit MNO from the platform wins over every table.
    if let Some(m) = meta.and_then(|m| m.mno.clone()) {
        mno = m;
        mno_source = Some(MnoSource::Pushed);
    }
    let from_anonymous = parties.is_some_and(|p| p.caller_withheld)
        || from.is_some_and(|(text, _)| vqprobe_wire::sip::is_withheld_name(text));
    CallNumbers {
        from_number,
        to_number,
        from_raw: from.map(|(t, _)| t.to_string()),
        to_raw: to.map(|(t, _)| t.to_string()),
        from_anonymous,
        diverted_from: number(diversion),
        mno,
        mno_source,
        country: remote_info.and_then(|i| i.country).map(|c| c.to_string()),
    }
}
