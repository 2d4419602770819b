//! One SIP dialog (an INVITE and what follows it), fed [`SipEvent`]s: its state, its
//! numbers and agent, and what each message changes about its media — endpoints to
//! announce, hold and resume, a fax phase, forks that lost.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::record::{CallStatus, EndedReason};
use crate::signal::{MediaOffer, OfferKind, Parties, SipEvent, SipMethod};
use crate::time::Timestamp;

/// One SIP dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// SIP Call-ID.
    pub call_id: Arc<str>,
    /// INVITE capture time.
    pub created: Timestamp,
    /// 2xx to the INVITE.
    pub answered: Option<Timestamp>,
    /// BYE, CANCEL or final error.
    pub ended: Option<Timestamp>,
    /// Current status.
    pub status: CallStatus,
    /// Why it ended.
    pub ended_reason: Option<EndedReason>,
    /// Last final response code to an INVITE.
    pub final_code: Option<u16>,
    /// Caller, callee and diverting party as the INVITE named them.
    pub parties: Parties,
    /// Agent from the configured header.
    pub agent_id: Option<String>,
    /// Where the first INVITE came from.
    pub caller_signalling: SocketAddr,
    /// Where it went.
    pub callee_signalling: SocketAddr,
    /// Media endpoints in the caller's SDPs.
    pub caller_media: Vec<SocketAddr>,
    /// Media endpoints in the callee's SDPs.
    pub callee_media: Vec<SocketAddr>,
    /// Primary codec named by SDP.
    pub sdp_codec: Option<String>,
    /// Last SIP message of the dialog.
    pub last_sip: Timestamp,
    /// The caller's and the callee's latest SDP put the call on hold.
    held: (bool, bool),
    /// A T.38 phase is running.
    in_fax: bool,
    cancelled: bool,
    /// Endpoints each early dialog (to-tag) announced in its responses.
    forks: Vec<(Box<str>, Vec<SocketAddr>)>,
}

/// What one SIP message changed.
#[derive(Debug, Default)]
pub struct SipOutcome {
    /// Media endpoints announced (in SDP order).
    pub media: Vec<MediaOffer>,
    /// The dialog reached a final state (BYE, CANCEL, final error).
    pub ended: bool,
    /// On the answer: endpoints only forks that were not answered announced.
    pub lost_forks: Vec<SocketAddr>,
    /// The call went on hold (`Some(true)`) or off it (`Some(false)`).
    pub hold: Option<bool>,
    /// A T.38 phase started (`Some(true)`) or audio came back (`Some(false)`).
    pub fax_phase: Option<bool>,
    /// The SDP declared voice-band data (V.152): a pass-through fax or modem call.
    pub vbd: bool,
}

impl Dialog {
    /// The dialog an INVITE request opens; `None` for anything else (REGISTER,
    /// OPTIONS, SUBSCRIBE… are not calls).
    pub fn open(ev: &SipEvent, at: Timestamp, src: SocketAddr, dst: SocketAddr) -> Option<Dialog> {
        if !(ev.is_request() && ev.method == SipMethod::Invite) {
            return None;
        }
        Some(Dialog {
            call_id: ev.call_id.clone(),
            created: at,
            answered: None,
            ended: None,
            status: CallStatus::InProgress,
            ended_reason: None,
            final_code: None,
            parties: ev.parties.as_deref().cloned().unwrap_or_default(),
            agent_id: ev.agent.clone(),
            caller_signalling: src,
            callee_signalling: dst,
            caller_media: Vec::new(),
            callee_media: Vec::new(),
            sdp_codec: None,
            last_sip: at,
            held: (false, false),
            in_fax: false,
            cancelled: false,
            forks: Vec::new(),
        })
    }

    /// Whether the call is on hold now (either side's latest SDP holds it).
    pub fn is_held(&self) -> bool {
        self.held.0 || self.held.1
    }

    /// Whether a T.38 phase is running now.
    pub fn in_fax(&self) -> bool {
        self.in_fax
    }

    /// Feeds one message of the dialog seen at `at` from `src` to `dst`.
    pub fn on_event(
        &mut self,
        ev: &SipEvent,
        at: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> SipOutcome {
        let mut out = SipOutcome::default();
        self.last_sip = self.last_sip.max(at);
        if self.agent_id.is_none() {
            self.agent_id = ev.agent.clone();
        }
        if let Some(offer) = &ev.offer {
            // Who sent this SDP: the caller's side sends from the caller's signalling
            // address (requests and responses alike), or towards the callee's.
            let from_caller = src == self.caller_signalling
                || (src != self.callee_signalling && dst == self.callee_signalling);
            let was_held = self.is_held();
            let was_fax = self.in_fax;
            let list = if from_caller {
                &mut self.caller_media
            } else {
                &mut self.callee_media
            };
            let mut announced = Vec::with_capacity(offer.media.len());
            for m in &offer.media {
                if m.rtp.ip().is_unspecified() {
                    continue;
                }
                if !list.contains(&m.rtp) {
                    list.push(m.rtp);
                }
                announced.push(m.rtp);
                out.media.push(m.clone());
            }
            let audio: Vec<&MediaOffer> = offer
                .media
                .iter()
                .filter(|m| m.kind == OfferKind::Audio)
                .collect();
            let held = !audio.is_empty() && audio.iter().all(|m| m.held);
            if from_caller {
                self.held.0 = held;
            } else {
                self.held.1 = held;
            }
            if self.is_held() != was_held {
                out.hold = Some(self.is_held());
            }
            let t38 = offer.media.iter().any(|m| m.kind == OfferKind::T38);
            if t38 {
                self.in_fax = true;
            } else if !audio.is_empty() {
                self.in_fax = false;
            }
            if self.in_fax != was_fax {
                out.fax_phase = Some(self.in_fax);
            }
            out.vbd = offer.media.iter().any(|m| m.vbd);
            if self.sdp_codec.is_none() {
                self.sdp_codec = offer.codec.clone();
            }
            // An early dialog's SDP (a response with a to-tag before the answer).
            if let (false, Some(tag), None) = (from_caller, &ev.to_tag, self.answered) {
                match self.forks.iter_mut().find(|(t, _)| t == tag) {
                    Some((_, eps)) => eps.extend(announced),
                    None => self.forks.push((tag.clone(), announced)),
                }
            }
        }
        match (ev.status, ev.method) {
            // A new INVITE after an auth challenge reopens the call.
            (None, SipMethod::Invite)
                if self.ended_reason.is_none()
                    || self.final_code.is_some_and(|c| c == 401 || c == 407) =>
            {
                self.status = CallStatus::InProgress;
                self.ended_reason = None;
                self.ended = None;
            }
            (None, SipMethod::Cancel) if self.answered.is_none() => {
                self.cancelled = true;
                self.status = CallStatus::Abandoned;
                self.ended_reason = Some(EndedReason::Cancel);
                self.ended = Some(at);
                out.ended = true;
            }
            (None, SipMethod::Bye) if self.ended.is_none() => {
                self.ended = Some(at);
                self.ended_reason = Some(EndedReason::Bye);
                self.status = if self.answered.is_some() {
                    CallStatus::Completed
                } else {
                    CallStatus::Abandoned
                };
                out.ended = true;
            }
            // An auth challenge is answered by a new INVITE in the same dialog: not
            // an end. If no retry follows, the call fails when it times out.
            (Some(code @ (401 | 407)), SipMethod::Invite) => {
                self.final_code = Some(code);
            }
            (Some(code), SipMethod::Invite) if code >= 200 => {
                self.final_code = Some(code);
                if (200..300).contains(&code) {
                    if self.answered.is_none() {
                        self.answered = Some(at);
                        out.lost_forks = self.lost_forks(ev.to_tag.as_deref());
                    }
                } else if self.answered.is_none() && self.ended_reason.is_none() {
                    if code == 487 || self.cancelled {
                        self.status = CallStatus::Abandoned;
                        self.ended_reason = Some(EndedReason::Cancel);
                    } else {
                        self.status = CallStatus::Failed;
                        self.ended_reason = Some(EndedReason::Error);
                    }
                    self.ended = Some(at);
                    out.ended = true;
                }
            }
            _ => {}
        }
        out
    }

    /// The endpoints that only early dialogs other than `answered` announced.
    fn lost_forks(&mut self, answered: Option<&str>) -> Vec<SocketAddr> {
        let forks = std::mem::take(&mut self.forks);
        if forks.len() < 2 {
            return Vec::new();
        }
        let winner: Vec<SocketAddr> = forks
            .iter()
            .filter(|(t, _)| Some(&**t) == answered)
            .flat_map(|(_, e)| e.iter().copied())
            .collect();
        let mut lost: Vec<SocketAddr> = forks
            .into_iter()
            .filter(|(t, _)| Some(&**t) != answered)
            .flat_map(|(_, e)| e)
            .filter(|e| !winner.contains(e) && !self.caller_media.contains(e))
            .collect();
        lost.sort();
        lost.dedup();
        self.callee_media.retain(|e| !lost.contains(e));
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::parse_payload;
    use vqprobe_wire::decode::Transport;

    const INVITE: &str = "INVITE sip:+15551230000@10.0.0.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060\r\n\
From: <sip:+447700900123@10.0.0.1>;tag=a\r\n\
To: <sip:+15551230000@10.0.0.2>\r\n\
Call-ID: abc@10.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
X-Agent-Id: agent-42\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 84\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    fn ev(s: &str) -> SipEvent {
        match parse_payload(Transport::Udp, s.as_bytes(), "X-Agent-Id").pop() {
            Some(Ok(e)) => e,
            other => panic!("not SIP: {other:?}"),
        }
    }

    fn resp(code: u16, method: &str, tag: &str, sdp: Option<(&str, u16)>) -> String {
        let body = sdp.map_or(String::new(), |(ip, port)| {
            format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n")
        });
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\nFrom: <sip:a@x>;tag=a\r\n\
To: <sip:b@y>;tag={tag}\r\nCall-ID: abc@10.0.0.1\r\nCSeq: 1 {method}\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            "10.0.0.1:5060".parse().expect("addr"),
            "10.0.0.2:5060".parse().expect("addr"),
        )
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn invite_announces_media_and_agent() {
        let (c, s) = addrs();
        let e = ev(INVITE);
        let mut d = Dialog::open(&e, t(0), c, s).expect("opens");
        let out = d.on_event(&e, t(0), c, s);
        assert_eq!(out.media.len(), 1);
        assert_eq!(out.media[0].rtp.to_string(), "10.0.0.1:4000");
        assert_eq!(d.agent_id.as_deref(), Some("agent-42"));
        assert_eq!(d.caller_media.len(), 1);
    }

    #[test]
    fn busy_is_failed_and_cancel_is_abandoned() {
        let (c, s) = addrs();
        let e = ev(INVITE);
        let mut d = Dialog::open(&e, t(0), c, s).expect("opens");
        assert!(
            d.on_event(&ev(&resp(486, "INVITE", "b", None)), t(1), s, c)
                .ended
        );
        assert_eq!(d.status, CallStatus::Failed);

        let mut d = Dialog::open(&e, t(0), c, s).expect("opens");
        let cancel = INVITE
            .replacen("INVITE sip", "CANCEL sip", 1)
            .replace("1 INVITE", "1 CANCEL");
        d.on_event(&ev(&cancel), t(1), c, s);
        d.on_event(&ev(&resp(487, "INVITE", "b", None)), t(2), s, c);
        assert_eq!(
            (d.status, d.ended_reason),
            (CallStatus::Abandoned, Some(EndedReason::Cancel))
        );
    }

    #[test]
    fn answered_then_bye_is_completed() {
        let (c, s) = addrs();
        let e = ev(INVITE);
        let mut d = Dialog::open(&e, t(0), c, s).expect("opens");
        d.on_event(&ev(&resp(200, "INVITE", "b", None)), t(1), s, c);
        let bye = INVITE
            .replacen("INVITE sip", "BYE sip", 1)
            .replace("1 INVITE", "2 BYE");
        assert!(d.on_event(&ev(&bye), t(9), c, s).ended);
        assert_eq!(
            (d.status, d.ended_reason),
            (CallStatus::Completed, Some(EndedReason::Bye))
        );
    }

    #[test]
    fn register_is_not_a_call() {
        let (c, s) = addrs();
        let reg = INVITE
            .replacen("INVITE sip", "REGISTER sip", 1)
            .replace("1 INVITE", "1 REGISTER");
        assert!(Dialog::open(&ev(&reg), t(0), c, s).is_none());
    }

    #[test]
    fn the_answered_fork_wins() {
        let (c, s) = addrs();
        let e = ev(INVITE);
        let mut d = Dialog::open(&e, t(0), c, s).expect("opens");
        d.on_event(&e, t(0), c, s);
        d.on_event(
            &ev(&resp(183, "INVITE", "f1", Some(("10.0.0.7", 7000)))),
            t(1),
            s,
            c,
        );
        d.on_event(
            &ev(&resp(183, "INVITE", "f2", Some(("10.0.0.8", 8000)))),
            t(1),
            s,
            c,
        );
        let out = d.on_event(
            &ev(&resp(200, "INVITE", "f2", Some(("10.0.0.8", 8000)))),
            t(2),
            s,
            c,
        );
        assert_eq!(
            out.lost_forks,
            vec!["10.0.0.7:7000".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(
            d.callee_media,
            vec!["10.0.0.8:8000".parse::<SocketAddr>().expect("addr")]
        );
    }

    #[test]
    fn hold_and_resume_are_reported() {
        let (c, s) = addrs();
        let e = ev(INVITE);
        let mut d = Dialog::open(&e, t(0), c, s).expect("opens");
        d.on_event(&e, t(0), c, s);
        let hold = INVITE
            .replace(
                "m=audio 4000 RTP/AVP 0\r\n",
                "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
            )
            .replace("Content-Length: 84", "Content-Length: 96");
        assert_eq!(d.on_event(&ev(&hold), t(5), c, s).hold, Some(true));
        assert!(d.is_held());
        assert_eq!(d.on_event(&e, t(9), c, s).hold, Some(false));
    }
}
