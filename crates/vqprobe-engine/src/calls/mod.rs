//! Calls: SIP dialogs ([`dialog`]), which way media and calls go ([`direction`]), and
//! the call record built from a call's dialog and streams ([`build`]).

pub mod build;
pub mod dialog;
pub mod direction;
pub mod numbers;

use std::net::SocketAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::codec::CodecTable;
use crate::mno::MnoTable;
use crate::numbers::Numbering;
use crate::time::Timestamp;

pub use build::{build_record, CallInput};
pub use dialog::{Dialog, SipOutcome};

/// Settings the dialogs and the record builder need.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// SIP header naming the agent (`X-Agent-Id` by default).
    pub agent_header: String,
    /// Networks of the probed host; empty means "decide from SIP roles".
    pub local_nets: Vec<IpNet>,
    /// Number plans, carrier prefixes, the user's MNO overrides, ported numbers and
    /// the default country.
    pub numbers: Arc<Numbering>,
    /// Codec impairment values (with config overrides).
    pub codecs: Arc<CodecTable>,
}

impl CallConfig {
    /// Defaults of the contract (agent header `X-Agent-Id`, no local networks, the
    /// built-in codec table) with libphonenumber's numbering and the given MNO
    /// prefix table as overrides.
    pub fn with_mno(mno: Arc<MnoTable>) -> CallConfig {
        Self::with_numbering(Arc::new(Numbering::builtin().with_overrides(mno)))
    }

    /// Defaults of the contract with the given numbering.
    pub fn with_numbering(numbers: Arc<Numbering>) -> CallConfig {
        CallConfig {
            agent_header: "X-Agent-Id".to_string(),
            local_nets: Vec::new(),
            numbers,
            codecs: Arc::new(CodecTable::default()),
        }
    }
}

/// A stable id for an RTP-only call: `rtp-` and 16 hex digits of FNV-1a over the
/// ordered endpoint pair and the start time, so the same capture gives the same ids.
pub fn synthesized_id(a: SocketAddr, b: SocketAddr, start: Timestamp) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{lo}|{hi}|{}", start.as_nanos()).bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("rtp-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesized_ids_are_stable_and_symmetric() {
        let c: SocketAddr = "10.0.0.1:5060".parse().expect("addr");
        let s: SocketAddr = "10.0.0.2:5060".parse().expect("addr");
        let t = Timestamp::from_nanos(5);
        assert_eq!(synthesized_id(c, s, t), synthesized_id(s, c, t));
        assert!(synthesized_id(c, s, t).starts_with("rtp-"));
    }
}
