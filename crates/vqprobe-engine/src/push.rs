//! Call metadata pushed by the platform (`POST /v1/calls`), attached by the engine to
//! the media that arrives at the announced endpoints.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::record::Direction;

/// Metadata for one call, as the platform knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushedCall {
    /// The platform's call id (1–256 characters); becomes the record's `call_id`.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub call_id: String,
    /// Agent handling the call.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Caller's number.
    #[serde(default)]
    pub from_number: Option<String>,
    /// Callee's number.
    #[serde(default)]
    pub to_number: Option<String>,
    /// `inbound` when the far end placed the call.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Mobile network operator; wins over the prefix table.
    #[serde(default)]
    pub mno: Option<String>,
    /// Link to a recording.
    #[serde(default)]
    pub recording_url: Option<String>,
    /// Media endpoints of the call (either side), as `{ip, port}`; at least one.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, required = true))]
    pub media: Vec<MediaAddr>,
}

/// One media endpoint in pushed metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MediaAddr {
    /// IPv4 or IPv6 address.
    #[cfg_attr(
        feature = "openapi",
        schema(schema_with = ip_schema, example = "192.0.2.10")
    )]
    pub ip: std::net::IpAddr,
    /// UDP port (1–65535).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 65535))]
    #[serde(deserialize_with = "port_number")]
    pub port: u16,
}

/// A port as any JSON number with an integral value in 0..=65535: JSON Schema's
/// `integer` (which the document declares) includes `5004.0`, so the server takes it too.
fn port_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    use serde::de::Error;
    // Every u16 is exact in an f64, and integers deserialise into one too.
    let f = f64::deserialize(d)?;
    if f.fract() == 0.0 && (0.0..=65535.0).contains(&f) {
        Ok(f as u16)
    } else {
        Err(D::Error::custom(format!(
            "port must be an integer from 0 to 65535, got {f}"
        )))
    }
}

/// Schema of an IP address: an IPv4 or an IPv6 address.
#[cfg(feature = "openapi")]
fn ip_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let of = |f| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(f)))
    };
    AnyOfBuilder::new()
        .item(of(KnownFormat::Ipv4))
        .item(of(KnownFormat::Ipv6))
        .build()
        .into()
}

impl MediaAddr {
    /// As a socket address.
    pub fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

/// Why pushed metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// `call_id` empty or too long.
    #[error("call_id must be 1 to 256 characters")]
    BadCallId,
    /// No media endpoint, or a port of 0.
    #[error("media must list at least one endpoint with a non-zero port")]
    NoMedia,
    /// The pipeline is not running (replay finished, shutting down) or is full.
    #[error("the capture pipeline cannot take metadata now")]
    Unavailable,
}

impl PushedCall {
    /// Checks what the engine relies on.
    pub fn validate(&self) -> Result<(), PushError> {
        if self.call_id.is_empty() || self.call_id.len() > 256 {
            return Err(PushError::BadCallId);
        }
        if self.media.is_empty() || self.media.iter().any(|m| m.port == 0) {
            return Err(PushError::NoMedia);
        }
        Ok(())
    }
}
