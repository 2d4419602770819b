//! Goodbye packets (RFC 3550 §6.6).

use super::reader::Reader;
use super::sdes::text_item;

/// A Goodbye packet (PT 203).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bye {
    /// Sources leaving the session.
    pub ssrcs: Vec<u32>,
    /// Optional reason text (UTF-8, invalid bytes replaced); an empty reason
    /// is reported as `None`.
    pub reason: Option<String>,
}

pub(super) fn parse_bye(body: &[u8], count: u8) -> Result<Bye, &'static str> {
    let mut r = Reader::new(body);
    let mut ssrcs = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        ssrcs.push(r.u32().ok_or("BYE source count exceeds packet length")?);
    }
    let reason = match r.u8() {
        None | Some(0) => None,
        Some(len) => {
            let text = r
                .take(usize::from(len))
                .ok_or("BYE reason overruns packet")?;
            Some(text_item(text))
        }
    };
    Ok(Bye { ssrcs, reason })
}
