//! Source Description packets (RFC 3550 §6.5).

use super::reader::Reader;
use super::SDES_CNAME;

/// One SDES chunk: the items describing one SSRC/CSRC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdesChunk {
    /// The source described.
    pub ssrc: u32,
    /// The first CNAME item, decoded as UTF-8 with invalid bytes replaced;
    /// it ties SSRCs of one endpoint together across streams.
    pub cname: Option<compact_str::CompactString>,
    /// Number of other items (NAME, TOOL, NOTE, PRIV, a repeated CNAME...),
    /// counted rather than kept because nothing downstream uses them.
    pub other_items: usize,
}

/// A Source Description packet (PT 202).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdes {
    /// Chunks in wire order.
    pub chunks: smallvec::SmallVec<[SdesChunk; 1]>,
}

pub(super) fn parse_sdes(body: &[u8], count: u8) -> Result<Sdes, &'static str> {
    let mut r = Reader::new(body);
    let mut chunks = smallvec::SmallVec::new();
    for _ in 0..count {
        let ssrc = r.u32().ok_or("SDES chunk count exceeds packet length")?;
        let mut chunk = SdesChunk {
            ssrc,
            ..SdesChunk::default()
        };
        // A missing END octet at the very end of the packet is tolerated:
        // the item list is unambiguous there and some stacks omit it.
        while let Some(item_type) = r.u8() {
            if item_type == 0 {
                break;
            }
            let len = r.u8().ok_or("SDES item length missing")?;
            let text = r
                .take(usize::from(len))
                .ok_or("SDES item overruns packet")?;
            if item_type == SDES_CNAME && chunk.cname.is_none() {
                chunk.cname = Some(compact_str::CompactString::from_utf8_lossy(trim_nul(text)));
            } else {
                chunk.other_items += 1;
            }
        }
        // Each chunk starts on a 32-bit boundary; the body starts on one
        // too, so aligning the position within the body is enough.
        let pos = body.len() - r.remaining();
        let pad = pos.next_multiple_of(4) - pos;
        // Short final padding is harmless: there is nothing after it.
        let _ = r.take(pad.min(r.remaining()));
        chunks.push(chunk);
    }
    Ok(Sdes { chunks })
}

/// Decodes an SDES item or BYE reason. Some stacks count a C string's
/// terminating NUL in the item length (sipnab's capture sends CNAME "c0\0");
/// tshark shows such text up to the NUL, and so does this.
pub(super) fn text_item(text: &[u8]) -> String {
    String::from_utf8_lossy(trim_nul(text)).into_owned()
}

/// `text` up to its first NUL (see [`text_item`]).
fn trim_nul(text: &[u8]) -> &[u8] {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    text.get(..end).unwrap_or_default()
}
