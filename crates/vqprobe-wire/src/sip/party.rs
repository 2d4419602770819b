//! The parties of a call as SIP signals them: the caller (RFC 3325 P-Asserted-Identity,
//! Remote-Party-ID, From), the callee (To, Request-URI) and the party that diverted the
//! call (RFC 5806 Diversion), each as the user part of a URI — the text a number is
//! read from — and whether the caller withheld their identity (RFC 3323 `anonymous`
//! URIs and Privacy, Remote-Party-ID `privacy`).
//!
//! Numbers are not interpreted here: `09876543210` stays national, `0044…` keeps its
//! international prefix. The engine turns them into E.164 with the number plans.

use std::borrow::Cow;

use super::{percent_decode, split_values, trim_lws};
use super::{NameAddr, SipMessage, StartLine};

/// Which part of the message a party was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartySource {
    /// P-Asserted-Identity (RFC 3325): the network-asserted caller.
    PAssertedIdentity,
    /// Remote-Party-ID (draft-ietf-sip-privacy): the older asserted identity.
    RemotePartyId,
    /// From.
    From,
    /// To.
    To,
    /// The Request-URI.
    RequestUri,
    /// Diversion (RFC 5806).
    Diversion,
}

/// The user part of a SIP, SIPS or tel URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriUser<'a> {
    /// The user part (for tel: the number), percent-decoded, separators kept:
    /// `+44-20-7946-0958`, `09876543210`, `anonymous`.
    pub user: Cow<'a, str>,
    /// RFC 3966 `phone-context` (a `+` prefix or a domain) of a local number.
    pub phone_context: Option<Cow<'a, str>>,
    /// The host of a SIP URI.
    pub host: Option<&'a str>,
}

/// The user part of a URI (also inside `<…>`); `None` for other schemes, a SIP URI
/// without a user, or bad percent-escapes.
pub fn uri_user(uri: &str) -> Option<UriUser<'_>> {
    let uri = trim_lws(uri);
    let uri = match (uri.find('<'), uri.rfind('>')) {
        (Some(open), Some(close)) if open < close => uri.get(open + 1..close)?,
        _ => uri,
    };
    let (scheme, rest) = uri.split_once(':')?;
    let (userinfo, host, params) = if scheme.eq_ignore_ascii_case("tel") {
        let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
        (number, None, params)
    } else if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let (userinfo, hostport) = rest.split_once('@')?;
        let host = hostport
            .split([';', '?', ':'])
            .next()
            .filter(|h| !h.is_empty());
        // `user;param=x:password`: user parameters (phone-context, RFC 4694 npdi/rn)
        // and the deprecated password are not part of the user.
        let userinfo = userinfo.split(':').next()?;
        let (user, params) = userinfo.split_once(';').unwrap_or((userinfo, ""));
        (user, host, params)
    } else {
        return None;
    };
    let user = percent_decode(userinfo)?;
    if user.is_empty() {
        return None;
    }
    let phone_context = params
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| trim_lws(name).eq_ignore_ascii_case("phone-context"))
        .and_then(|(_, v)| percent_decode(trim_lws(v)))
        .filter(|v| !v.is_empty());
    Some(UriUser {
        user,
        phone_context,
        host,
    })
}

/// One party as signalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The URI's user part, as written (percent-decoded).
    pub user: String,
    /// RFC 3966 `phone-context` of a local number.
    pub phone_context: Option<String>,
    /// Where it was read from.
    pub source: PartySource,
}

impl Party {
    fn from_uri(uri: &str, source: PartySource) -> Option<Party> {
        let u = uri_user(uri)?;
        Some(Party {
            user: u.user.into_owned(),
            phone_context: u.phone_context.map(Cow::into_owned),
            source,
        })
    }

    /// Whether the user part looks like a number: digits, a leading `+` and the
    /// visual separators of RFC 3966 §5.1.1 (`-` `.` `(` `)`) and spaces.
    pub fn is_dialable(&self) -> bool {
        let rest = self
            .user
            .trim()
            .strip_prefix('+')
            .unwrap_or(self.user.trim());
        rest.bytes().any(|b| b.is_ascii_digit())
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'(' | b')' | b' '))
    }
}

/// User parts and display names that say "no number" (RFC 3323 §4.1.1.3 and what
/// carriers write in practice).
const WITHHELD_NAMES: [&str; 8] = [
    "anonymous",
    "restricted",
    "withheld",
    "private",
    "unavailable",
    "unknown",
    "anonymous caller",
    "no caller id",
];

/// Whether a user part or display name says the identity is withheld
/// (`anonymous`, `Restricted`, `withheld`, `private`…).
pub fn is_withheld_name(s: &str) -> bool {
    let s = s.trim().trim_matches('"');
    WITHHELD_NAMES.iter().any(|w| s.eq_ignore_ascii_case(w))
}

/// A name-addr's parameter (`;privacy=full`), without its quotes.
fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let after = match value.rfind('>') {
        Some(i) => value.get(i + 1..)?,
        None => value.split_once(';').map(|(_, p)| p)?,
    };
    after
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| trim_lws(n).eq_ignore_ascii_case(name))
        .map(|(_, v)| trim_lws(v).trim_matches('"'))
}

impl SipMessage<'_> {
    /// The caller: the first P-Asserted-Identity that holds a number (the network's
    /// word, as From is whatever the caller wrote), else the first calling-party
    /// Remote-Party-ID that does, else From's user, number or not (`alice`,
    /// `anonymous`).
    pub fn caller(&self) -> Option<Party> {
        let asserted = self
            .headers_named("P-Asserted-Identity")
            .flat_map(split_values)
            .filter_map(NameAddr::parse)
            .filter_map(|a| Party::from_uri(a.uri, PartySource::PAssertedIdentity))
            .find(Party::is_dialable);
        asserted
            .or_else(|| {
                self.headers_named("Remote-Party-ID")
                    .flat_map(split_values)
                    .filter(|v| param(v, "party").is_none_or(|p| p.eq_ignore_ascii_case("calling")))
                    .filter_map(NameAddr::parse)
                    .filter_map(|a| Party::from_uri(a.uri, PartySource::RemotePartyId))
                    .find(Party::is_dialable)
            })
            .or_else(|| Party::from_uri(self.from.uri, PartySource::From))
    }

    /// Whether the caller withheld their identity: an anonymous From (RFC 3323
    /// `"Anonymous" <sip:anonymous@anonymous.invalid>` and the like), a Privacy header
    /// asking to hide it (`id`, `user` or `header`), or a calling Remote-Party-ID with
    /// `privacy=full` or `uri`. The asserted number, if any, is still the caller's.
    pub fn caller_withheld(&self) -> bool {
        let from_anonymous = self.from.display.is_some_and(is_withheld_name)
            || uri_user(self.from.uri).is_some_and(|u| {
                is_withheld_name(&u.user)
                    || u.host
                        .is_some_and(|h| h.eq_ignore_ascii_case("anonymous.invalid"))
            });
        let privacy = self
            .headers_named("Privacy")
            .flat_map(|v| v.split([';', ',']))
            .map(trim_lws)
            .any(|t| {
                ["id", "user", "header"]
                    .iter()
                    .any(|p| t.eq_ignore_ascii_case(p))
            });
        let rpid = self
            .headers_named("Remote-Party-ID")
            .flat_map(split_values)
            .filter(|v| param(v, "party").is_none_or(|p| p.eq_ignore_ascii_case("calling")))
            .any(|v| {
                param(v, "privacy").is_some_and(|p| {
                    p.eq_ignore_ascii_case("full") || p.eq_ignore_ascii_case("uri")
                })
            });
        from_anonymous || privacy || rpid
    }

    /// The callee: To when it holds a number, else the Request-URI when it does (a
    /// proxy may retarget to a number while To keeps a name), else To's user.
    pub fn callee(&self) -> Option<Party> {
        let to = Party::from_uri(self.to.uri, PartySource::To);
        if to.as_ref().is_some_and(Party::is_dialable) {
            return to;
        }
        let ruri = match self.start {
            StartLine::Request { uri, .. } => Party::from_uri(uri, PartySource::RequestUri),
            StartLine::Response { .. } => None,
        };
        if ruri.as_ref().is_some_and(Party::is_dialable) {
            return ruri;
        }
        to.or(ruri)
    }

    /// The number the call was first diverted from: the last Diversion value that
    /// holds a number (RFC 5806 lists the most recent diversion first).
    pub fn diversion(&self) -> Option<Party> {
        self.headers_named("Diversion")
            .flat_map(split_values)
            .filter_map(NameAddr::parse)
            .filter_map(|a| Party::from_uri(a.uri, PartySource::Diversion))
            .filter(Party::is_dialable)
            .last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse;

    fn invite(from: &str, to: &str, ruri: &str, extra: &str) -> String {
        format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nFrom: {from};tag=1\r\n\
To: {to}\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    fn with<T>(text: &str, f: impl FnOnce(&SipMessage<'_>) -> T) -> T {
        match parse(text.as_bytes()) {
            Ok(m) => f(&m),
            Err(e) => panic!("{e}: {text}"),
        }
    }

    fn user(p: Option<Party>) -> Option<(String, PartySource)> {
        p.map(|p| (p.user, p.source))
    }

    #[test]
    fn uri_user_parts() {
        let u = uri_user("<tel:7042;phone-context=+1-212;ext=5>").expect("tel");
        assert_eq!(
            (u.user.as_ref(), u.phone_context.as_deref()),
            ("7042", Some("+1-212"))
        );
        let u = uri_user("sip:09876543210;npdi;rn=+919800000000@gw.example:5060;user=phone")
            .expect("sip with user parameters");
        assert_eq!(u.user, "09876543210");
        assert_eq!(u.host, Some("gw.example"));
        assert_eq!(
            uri_user("sips:%2B44%2020@x")
                .map(|u| u.user.into_owned())
                .as_deref(),
            Some("+44 20")
        );
        let u = uri_user("sip:5550123;phone-context=example.com@pbx").expect("local number");
        assert_eq!(u.phone_context.as_deref(), Some("example.com"));
        assert_eq!(uri_user("sip:pbx.example"), None, "no user part");
        assert_eq!(uri_user("mailto:a@b"), None);
        assert_eq!(uri_user("sip:%zz@x"), None, "bad escape");
        assert_eq!(uri_user("tel:"), None);
    }

    #[test]
    fn caller_prefers_asserted_numbers() {
        let text = invite(
            "<sip:alice@pbx>",
            "<sip:+4930123456@gw>",
            "sip:+4930123456@gw",
            "P-Asserted-Identity: <sip:alice@pbx>, <tel:+44-20-7946-0958>\r\n\
P-Asserted-Identity: <sip:+447700900001@pbx>\r\n",
        );
        with(&text, |m| {
            assert_eq!(
                user(m.caller()),
                Some(("+44-20-7946-0958".into(), PartySource::PAssertedIdentity))
            );
            assert!(!m.caller_withheld());
        });
        // Remote-Party-ID: the calling party's, not the called party's.
        let text = invite(
            "<sip:alice@pbx>",
            "<sip:b@gw>",
            "sip:b@gw",
            "Remote-Party-ID: <sip:+15551230000@gw>;party=called\r\n\
Remote-Party-ID: \"Bob\" <sip:09876543210@gw>;party=calling;screen=yes;privacy=off\r\n",
        );
        with(&text, |m| {
            assert_eq!(
                user(m.caller()),
                Some(("09876543210".into(), PartySource::RemotePartyId))
            );
            assert!(!m.caller_withheld());
        });
        // Neither: From, whatever its user part.
        with(
            &invite("\"Al\" <sip:alice@pbx>", "<sip:b@gw>", "sip:b@gw", ""),
            |m| {
                assert_eq!(user(m.caller()), Some(("alice".into(), PartySource::From)));
            },
        );
    }

    #[test]
    fn withheld_callers_are_recognised() {
        let cases = [
            ("\"Anonymous\" <sip:anonymous@anonymous.invalid>", "", true),
            ("<sip:restricted@gw>", "", true),
            ("\"Withheld\" <sip:+441234@gw>", "", true),
            ("<sip:x@anonymous.invalid>", "", true),
            ("<sip:+441234567890@gw>", "Privacy: id\r\n", true),
            ("<sip:+441234567890@gw>", "Privacy: user;critical\r\n", true),
            ("<sip:+441234567890@gw>", "Privacy: none\r\n", false),
            (
                "<sip:+441234567890@gw>",
                "Remote-Party-ID: <sip:+441234567890@gw>;party=calling;privacy=full\r\n",
                true,
            ),
            (
                "<sip:+441234567890@gw>",
                "Remote-Party-ID: <sip:+441234567890@gw>;party=calling;privacy=off\r\n",
                false,
            ),
            ("<sip:+441234567890@gw>", "", false),
            ("\"Unknown Bob\" <sip:bob@gw>", "", false),
        ];
        for (from, extra, want) in cases {
            let text = invite(from, "<sip:b@gw>", "sip:b@gw", extra);
            with(&text, |m| {
                assert_eq!(m.caller_withheld(), want, "{from} {extra}")
            });
        }
        // A withheld caller with a network-asserted number keeps the number.
        let text = invite(
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
            "<sip:b@gw>",
            "sip:b@gw",
            "P-Asserted-Identity: <tel:+441234567890>\r\nPrivacy: id\r\n",
        );
        with(&text, |m| {
            assert!(m.caller_withheld());
            assert_eq!(
                user(m.caller()).map(|u| u.0).as_deref(),
                Some("+441234567890")
            );
        });
    }

    #[test]
    fn callee_and_diversion() {
        with(
            &invite("<sip:a@x>", "<sip:alice@pbx>", "sip:+4930123456@gw", ""),
            |m| {
                assert_eq!(
                    user(m.callee()),
                    Some(("+4930123456".into(), PartySource::RequestUri))
                );
                assert_eq!(m.diversion(), None);
            },
        );
        with(
            &invite("<sip:a@x>", "<tel:030-123456>", "sip:+4930999@gw", ""),
            |m| {
                assert_eq!(
                    user(m.callee()),
                    Some(("030-123456".into(), PartySource::To))
                );
            },
        );
        with(
            &invite("<sip:a@x>", "<sip:alice@pbx>", "sip:bob@pbx", ""),
            |m| {
                assert_eq!(user(m.callee()), Some(("alice".into(), PartySource::To)));
            },
        );
        // RFC 5806: most recent diversion first; the last one is the number dialled.
        let text = invite(
            "<sip:a@x>",
            "<sip:+447700900002@gw>",
            "sip:+447700900003@gw",
            "Diversion: <sip:+447700900002@gw>;reason=no-answer;counter=1, <sip:voicemail@gw>\r\n\
Diversion: <tel:020-7946-0000>;reason=unconditional\r\n",
        );
        with(&text, |m| {
            assert_eq!(
                user(m.diversion()),
                Some(("020-7946-0000".into(), PartySource::Diversion))
            );
        });
    }
}
