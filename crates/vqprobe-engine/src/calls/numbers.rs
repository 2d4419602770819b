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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use vqprobe_wire::decode::Transport;

    use super::*;
    use crate::mno::MnoTable;
    use crate::numbers::ported::PortedNumbers;
    use crate::numbers::Region;
    use crate::signal::parse_payload;

    /// The parties of a real INVITE, through the SIP parser.
    fn parties(from: &str, to: &str, extra: &str) -> Parties {
        let text = format!(
            "INVITE sip:x@gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nFrom: {from};tag=1\r\n\
To: {to}\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse_payload(Transport::Udp, text.as_bytes(), "X-Agent-Id").pop() {
            Some(Ok(ev)) => *ev.parties.unwrap_or_default(),
            other => panic!("{other:?}"),
        }
    }

    fn numbering(default: Option<&str>) -> Numbering {
        Numbering::builtin().with_default_country(default.and_then(Region::parse))
    }

    fn inbound(n: &Numbering, from: &str) -> CallNumbers {
        let p = parties(from, "<sip:+4930901820@pbx>", "");
        call_numbers(n, Some(&p), None, Direction::Inbound)
    }

    /// (from_number, mno, mno_source, country) of an inbound call from `from`.
    fn summary(c: &CallNumbers) -> (Option<&str>, &str, Option<MnoSource>, Option<&str>) {
        (
            c.from_number.as_deref(),
            c.mno.as_str(),
            c.mno_source,
            c.country.as_deref(),
        )
    }

    const LPN: Option<MnoSource> = Some(MnoSource::Libphonenumber);

    #[test]
    fn national_numbers_need_the_default_country() {
        let india = numbering(Some("IN"));
        let c = inbound(&india, "<sip:09876543210@gw;user=phone>");
        assert_eq!(
            summary(&c),
            (Some("+919876543210"), "Airtel", LPN, Some("IN"))
        );
        assert_eq!(c.from_raw.as_deref(), Some("09876543210"));
        assert_eq!(c.to_number.as_deref(), Some("+4930901820"));
        // Without it the number cannot be placed: kept as dialled, MNO unknown.
        let c = inbound(&numbering(None), "<sip:09876543210@gw>");
        assert_eq!(summary(&c), (Some("09876543210"), "unknown", None, None));
    }

    #[test]
    fn international_forms_without_plus() {
        let n = numbering(Some("DE"));
        let three = (Some("+447400123456"), "Three", LPN, Some("GB"));
        for from in [
            "<sip:+447400123456@gw>",
            "<sip:447400123456@gw>",
            "<sip:0044-7400-123456@gw>",
            "<tel:+44-7400-123456>",
            "<sip:%2B44%207400%20123456@gw>",
        ] {
            assert_eq!(summary(&inbound(&n, from)), three, "{from}");
        }
        let none = numbering(None);
        for from in ["<sip:0044%207400%20123456@gw>", "<sip:011447400123456@gw>"] {
            assert_eq!(summary(&inbound(&none, from)), three, "{from}");
        }
        // A local number completed by its RFC 3966 phone-context.
        let c = inbound(&none, "<tel:7400123456;phone-context=+44>");
        assert_eq!(summary(&c), three);
        // Extensions and short codes stay as dialled.
        assert_eq!(
            inbound(&n, "<sip:1001@pbx>").from_number.as_deref(),
            Some("1001")
        );
        assert_eq!(inbound(&none, "<sip:1001@pbx>").mno, "unknown");
    }

    #[test]
    fn nanp_has_a_country_but_no_carrier() {
        let c = inbound(&numbering(None), "<sip:+12015550123@gw>");
        assert_eq!(
            summary(&c),
            (Some("+12015550123"), "unknown", None, Some("US"))
        );
    }

    #[test]
    fn overrides_ported_and_pushed_win_in_that_order() {
        let rows = MnoTable::from_csv_str("+447400,Override Co,GB\n+4474001,Narrow Co,GG\n")
            .unwrap_or_default();
        let ported = PortedNumbers::from_csv_str("+447400123456,Ported Co\n").unwrap_or_default();
        let n = numbering(None).with_overrides(Arc::new(rows));
        let c = inbound(&n, "<sip:+447400999999@gw>");
        assert_eq!(
            summary(&c),
            (
                Some("+447400999999"),
                "Override Co",
                Some(MnoSource::Override),
                Some("GB")
            )
        );
        // The longest row wins, and its country with it.
        let c = inbound(&n, "<sip:+447400123456@gw>");
        assert_eq!(
            (c.mno.as_str(), c.country.as_deref()),
            ("Narrow Co", Some("GG"))
        );
        let n = n.with_ported(Arc::new(ported));
        let c = inbound(&n, "<sip:+447400123456@gw>");
        assert_eq!(
            summary(&c),
            (
                Some("+447400123456"),
                "Ported Co",
                Some(MnoSource::Ported),
                Some("GB")
            )
        );
        let meta = PushedCall {
            call_id: "p".into(),
            agent_id: None,
            from_number: Some("0044 7400 123456".into()),
            to_number: None,
            direction: None,
            mno: Some("Pushed Co".into()),
            recording_url: None,
            media: Vec::new(),
        };
        let c = call_numbers(&n, None, Some(&meta), Direction::Inbound);
        assert_eq!(
            summary(&c),
            (
                Some("+447400123456"),
                "Pushed Co",
                Some(MnoSource::Pushed),
                Some("GB")
            )
        );
        assert_eq!(c.from_raw.as_deref(), Some("0044 7400 123456"));
    }

    #[test]
    fn anonymous_callers() {
        let n = numbering(Some("GB"));
        let c = inbound(&n, "\"Anonymous\" <sip:anonymous@anonymous.invalid>");
        assert!(c.from_anonymous);
        assert_eq!(summary(&c), (None, "unknown", None, None));
        assert_eq!(c.from_raw.as_deref(), Some("anonymous"));
        // Withheld towards the callee, asserted in the network: the number is known.
        let p = parties(
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
            "<sip:+4930901820@pbx>",
            "P-Asserted-Identity: <tel:07400123456>\r\nPrivacy: id\r\n",
        );
        let c = call_numbers(&n, Some(&p), None, Direction::Inbound);
        assert!(c.from_anonymous);
        assert_eq!(
            summary(&c),
            (Some("+447400123456"), "Three", LPN, Some("GB"))
        );
        // Outbound: the remote party is the callee; an anonymous caller is ours.
        let c = call_numbers(&n, Some(&p), None, Direction::Outbound);
        assert_eq!(
            (c.mno.as_str(), c.country.as_deref()),
            ("unknown", Some("DE"))
        );
        assert_eq!(c.to_number.as_deref(), Some("+4930901820"));
    }

    #[test]
    fn diversion_is_normalised() {
        let p = parties(
            "<sip:+447400123456@gw>",
            "<sip:+4930901820@pbx>",
            "Diversion: <sip:030-901821@pbx>;reason=unconditional\r\n",
        );
        let c = call_numbers(&numbering(Some("DE")), Some(&p), None, Direction::Inbound);
        assert_eq!(c.diverted_from.as_deref(), Some("+4930901821"));
    }
}
