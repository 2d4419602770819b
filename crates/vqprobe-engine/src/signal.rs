//! A SIP message reduced to what call tracking needs — its dialog, what it does to the
//! dialog, the numbers, and the media its SDP announces — as an owned value.
//!
//! On the live path the capture thread parses each SIP message once (it must, to route
//! the call to its worker) and hands this event to the worker's engine with the frame:
//! SIP is never parsed twice. Offline, the engine makes the same event from the same
//! parser, so both paths follow calls from identical inputs.

use std::net::SocketAddr;
use std::sync::Arc;

use vqprobe_wire::decode::Transport;
use vqprobe_wire::sdp::{self, SessionDescription};
use vqprobe_wire::sip::{self, Method, Party, SipError, SipMessage};
use vqprobe_wire::vqreport::{self, VqReport};
use vqprobe_wire::Pt;

use crate::media::{PayloadFormat, PayloadMap};

/// The request methods call tracking distinguishes (the rest are `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipMethod {
    /// INVITE: opens a call, or re-negotiates one.
    Invite,
    /// ACK.
    Ack,
    /// BYE: ends a call.
    Bye,
    /// CANCEL: abandons a call before answer.
    Cancel,
    /// UPDATE: re-negotiates.
    Update,
    /// PRACK.
    Prack,
    /// OPTIONS.
    Options,
    /// REGISTER.
    Register,
    /// INFO.
    Info,
    /// SUBSCRIBE.
    Subscribe,
    /// NOTIFY.
    Notify,
    /// PUBLISH (RFC 6035 quality reports travel in it).
    Publish,
    /// REFER.
    Refer,
    /// MESSAGE.
    Message,
    /// Anything else.
    Other,
}

impl SipMethod {
    fn from_wire(m: Method<'_>) -> SipMethod {
        match m {
            Method::Invite => SipMethod::Invite,
            Method::Ack => SipMethod::Ack,
            Method::Bye => SipMethod::Bye,
            Method::Cancel => SipMethod::Cancel,
            Method::Update => SipMethod::Update,
            Method::Prack => SipMethod::Prack,
            Method::Options => SipMethod::Options,
            Method::Register => SipMethod::Register,
            Method::Info => SipMethod::Info,
            Method::Subscribe => SipMethod::Subscribe,
            Method::Notify => SipMethod::Notify,
            Method::Publish => SipMethod::Publish,
            Method::Refer => SipMethod::Refer,
            Method::Message => SipMethod::Message,
            Method::Other(_) => SipMethod::Other,
        }
    }

    /// The bounded label of a method for counters (`OTHER` for the rest).
    pub fn label(self) -> &'static str {
        match self {
            SipMethod::Invite => "INVITE",
            SipMethod::Ack => "ACK",
            SipMethod::Bye => "BYE",
            SipMethod::Cancel => "CANCEL",
            SipMethod::Update => "UPDATE",
            SipMethod::Prack => "PRACK",
            SipMethod::Options => "OPTIONS",
            SipMethod::Register => "REGISTER",
            SipMethod::Info => "INFO",
            SipMethod::Subscribe => "SUBSCRIBE",
            SipMethod::Notify => "NOTIFY",
            SipMethod::Publish => "PUBLISH",
            SipMethod::Refer => "REFER",
            SipMethod::Message => "MESSAGE",
            SipMethod::Other => "OTHER",
        }
    }
}

/// What kind of media an `m=` line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferKind {
    /// `m=audio` over RTP.
    Audio,
    /// `m=image … udptl t38` (or T.38 over RTP): a fax phase.
    T38,
}

/// One media endpoint an SDP announces.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaOffer {
    /// Audio or fax.
    pub kind: OfferKind,
    /// Where RTP (or UDPTL) is to be sent.
    pub rtp: SocketAddr,
    /// Where RTCP is to be sent (`a=rtcp`, rtcp-mux, or port + 1).
    pub rtcp: SocketAddr,
    /// Payload types the writer expects to receive, with their meaning.
    pub payloads: Arc<PayloadMap>,
    /// `sendonly`/`inactive`, or `c=0.0.0.0`: the writer puts the call on hold.
    pub held: bool,
    /// V.152 voice-band data (`a=gpmd:<pt> vbd=yes`): G.711 pass-through fax or modem.
    pub vbd: bool,
}

/// The media of one SDP body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Offer {
    /// Active media sections (port ≠ 0) of a kind the probe follows.
    pub media: Vec<MediaOffer>,
    /// Audio sections rejected or disabled (port 0), e.g. while a T.38 phase runs.
    pub audio_disabled: bool,
    /// The primary speech codec of the first audio section.
    pub codec: Option<String>,
}

/// The parties of a call as its INVITE names them (user parts as signalled; the
/// record normalises them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parties {
    /// The caller (P-Asserted-Identity, Remote-Party-ID, else From).
    pub caller: Option<Party>,
    /// The callee (To, else the Request-URI).
    pub callee: Option<Party>,
    /// The number the call was first diverted from (Diversion).
    pub diversion: Option<Party>,
    /// The caller withheld their identity (anonymous From, Privacy, RPID privacy).
    pub caller_withheld: bool,
}

/// A SIP message, as call tracking sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SipEvent {
    /// Call-ID.
    pub call_id: Arc<str>,
    /// The request method, or for a response the method it answers (CSeq).
    pub method: SipMethod,
    /// Status code of a response; `None` for a request.
    pub status: Option<u16>,
    /// Who calls whom, as an INVITE request signals it; `None` on every other
    /// message (only the INVITE that opens a dialog is read for numbers).
    pub parties: Option<Box<Parties>>,
    /// The configured agent header's value.
    pub agent: Option<String>,
    /// To-tag: tells forked early dialogs apart.
    pub to_tag: Option<Box<str>>,
    /// The SDP, if the message carries one.
    pub offer: Option<Box<Offer>>,
    /// The SDP body failed to parse.
    pub sdp_error: bool,
    /// An RFC 6035 quality report (a PUBLISH with `application/vq-rtcpxr`): it is
    /// about the call its own `CallID` names, not the PUBLISH's dialog.
    pub vq_report: Option<Box<VqReport>>,
}

impl SipEvent {
    /// The event of a parsed message; `agent_header` names the header carrying the
    /// agent id.
    pub fn from_message(msg: &SipMessage<'_>, agent_header: &str) -> SipEvent {
        SipEvent {
            call_id: Arc::from(msg.call_id),
            method: SipMethod::from_wire(msg.method()),
            status: msg.status(),
            parties: (msg.is_request() && msg.method() == Method::Invite).then(|| {
                Box::new(Parties {
                    caller: msg.caller(),
                    callee: msg.callee(),
                    diversion: msg.diversion(),
                    caller_withheld: msg.caller_withheld(),
                })
            }),
            agent: msg
                .header(agent_header)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            to_tag: msg.to.tag.map(Box::from),
            offer: msg.sdp.as_ref().map(|s| Box::new(offer(s))),
            sdp_error: msg.sdp_error.is_some(),
            vq_report: vq_report(msg),
        }
    }

    /// The call this message belongs to: the reported call for an RFC 6035 report,
    /// else its own Call-ID.
    pub fn routing_call_id(&self) -> &str {
        match &self.vq_report {
            Some(r) => &r.call_id,
            None => &self.call_id,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        self.status.is_none()
    }

    /// The counter label: the method of a request, `RESPONSE` for a response.
    pub fn label(&self) -> &'static str {
        if self.is_request() {
            self.method.label()
        } else {
            "RESPONSE"
        }
    }

    /// Whether the message ends its call (BYE, CANCEL, or a final error to the INVITE;
    /// a 401/407 challenge is answered by a new INVITE and ends nothing).
    pub fn ends_call(&self) -> bool {
        match (self.status, self.method) {
            (None, SipMethod::Bye | SipMethod::Cancel) => true,
            (Some(401 | 407), _) => false,
            (Some(code), SipMethod::Invite) => code >= 300,
            _ => false,
        }
    }
}

/// The RFC 6035 report a PUBLISH carries, if it is one and it parses.
fn vq_report(msg: &SipMessage<'_>) -> Option<Box<VqReport>> {
    if !(msg.is_request() && msg.method() == Method::Publish) {
        return None;
    }
    let ct = msg.header("Content-Type")?;
    if !ct.to_ascii_lowercase().contains("application/vq-rtcpxr") {
        return None;
    }
    vqreport::parse(msg.body).ok().map(Box::new)
}

/// Every SIP message in a UDP datagram or TCP segment, each parsed once: an event, or
/// the reason it could not be read. Empty when the payload does not look like SIP.
pub fn parse_payload(
    transport: Transport,
    payload: &[u8],
    agent_header: &str,
) -> Vec<Result<SipEvent, SipError>> {
    if !sip::looks_like_sip(payload) {
        return Vec::new();
    }
    match transport {
        Transport::Udp => {
            vec![sip::parse(payload).map(|m| SipEvent::from_message(&m, agent_header))]
        }
        Transport::Tcp => sip::parse_stream(payload)
            .0
            .into_iter()
            .map(|r| r.map(|m| SipEvent::from_message(&m, agent_header)))
            .collect(),
    }
}

/// The media an SDP announces.
pub fn offer(sdp: &SessionDescription) -> Offer {
    let mut out = Offer::default();
    for m in &sdp.media {
        let t38 = m.kind.eq_ignore_ascii_case("image")
            && (m.proto.to_ascii_lowercase().contains("udptl")
                || m.proto.to_ascii_lowercase().contains("t38"));
        let kind = if m.is_audio() {
            OfferKind::Audio
        } else if t38 {
            OfferKind::T38
        } else {
            continue;
        };
        if m.is_rejected() {
            if kind == OfferKind::Audio {
                out.audio_disabled = true;
            }
            continue;
        }
        let Some(addr) = m.effective_addr(sdp) else {
            continue;
        };
        if kind == OfferKind::Audio && out.codec.is_none() {
            out.codec = m.primary_codec().map(|c| c.encoding.clone());
        }
        let held = m.is_held(sdp);
        // A held stream at 0.0.0.0 announces no endpoint, only the hold.
        let rtp = SocketAddr::new(addr, m.port);
        let rtcp_addr = m.rtcp_addr(sdp).unwrap_or(addr);
        let formats = m
            .formats
            .iter()
            .filter_map(|&pt| {
                m.codec_for_pt(pt)
                    .cloned()
                    .or_else(|| sdp::static_rtpmap(pt))
            })
            .map(|r| PayloadFormat {
                pt: Pt(r.pt),
                encoding: r.encoding,
                clock_rate: r.clock_rate,
            })
            .collect();
        out.media.push(MediaOffer {
            kind,
            rtp,
            rtcp: SocketAddr::new(rtcp_addr, m.rtcp_port()),
            payloads: Arc::new(PayloadMap {
                formats,
                ptime_ms: m.ptime_ms,
            }),
            held,
            vbd: m.vbd,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn invite() -> String {
        format!(
            "INVITE sip:+15551230000@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\n\
From: <sip:+447700900123@10.0.0.1>;tag=a\r\nTo: <sip:+15551230000@10.0.0.2>\r\n\
Call-ID: abc@10.0.0.1\r\nCSeq: 1 INVITE\r\nX-Agent-Id: agent-42\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        )
    }

    #[test]
    fn invite_becomes_an_event_with_its_media() {
        let evs = parse_payload(Transport::Udp, invite().as_bytes(), "X-Agent-Id");
        let ev = evs[0].as_ref().expect("parses");
        assert_eq!(&*ev.call_id, "abc@10.0.0.1");
        assert_eq!((ev.method, ev.status), (SipMethod::Invite, None));
        assert_eq!(ev.agent.as_deref(), Some("agent-42"));
        let parties = ev.parties.as_deref().expect("an INVITE names its parties");
        let caller = parties.caller.as_ref().map(|p| p.user.as_str());
        assert_eq!(caller, Some("+447700900123"));
        assert!(!parties.caller_withheld);
        let offer = ev.offer.as_ref().expect("sdp");
        assert_eq!(offer.media.len(), 1);
        let m = &offer.media[0];
        assert_eq!(m.rtp.to_string(), "10.0.0.1:4000");
        assert_eq!(m.rtcp.to_string(), "10.0.0.1:4001");
        assert_eq!(m.payloads.formats.len(), 2);
        assert_eq!(
            m.payloads.get(Pt(101)).map(|f| f.encoding.as_str()),
            Some("telephone-event")
        );
        assert!(!ev.ends_call());
        assert!(parse_payload(Transport::Udp, b"\x80\x00garbage", "X").is_empty());
    }

    #[test]
    fn t38_reinvite_is_a_fax_offer() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 0 RTP/AVP 0\r\nm=image 4002 udptl t38\r\n";
        let parsed = sdp::parse(sdp.as_bytes()).expect("sdp");
        let o = offer(&parsed);
        assert!(o.audio_disabled);
        assert_eq!(o.media.len(), 1);
        assert_eq!(o.media[0].kind, OfferKind::T38);
        assert_eq!(o.media[0].rtp.port(), 4002);
    }
}
