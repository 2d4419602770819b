//! Application-defined packets (RFC 3550 §6.7), kept as metadata only.

use super::reader::Reader;

/// An application-defined packet (PT 204), kept as metadata only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct App {
    /// The 5-bit subtype from the header's count field.
    pub subtype: u8,
    /// SSRC/CSRC of the sender.
    pub ssrc: u32,
    /// Four-octet name, normally ASCII (not checked: vendors ignore that).
    pub name: [u8; 4],
    /// Bytes of application data after the name (padding excluded).
    pub data_len: usize,
}

impl App {
    /// The name as text when it is printable ASCII, which RFC 3550 §6.7
    /// requires but encrypted or proprietary senders do not honour.
    #[must_use]
    pub fn name_str(&self) -> Option<&str> {
        if self.name.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            std::str::from_utf8(&self.name).ok()
        } else {
            None
        }
    }
}

pub(super) fn parse_app(body: &[u8], subtype: u8) -> Result<App, &'static str> {
    let mut r = Reader::new(body);
    let ssrc = r.u32().ok_or("APP SSRC missing")?;
    let name = r.array::<4>().ok_or("APP name missing")?;
    Ok(App {
        subtype,
        ssrc,
        name,
        data_len: r.remaining(),
    })
}
