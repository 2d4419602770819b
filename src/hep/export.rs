//! The exporter thread: takes [`HepOut`] messages off the queue, writes each as one
//! HEPv3 packet (SIP as type 1, RTCP JSON as type 5, reports as the configured type,
//! with the Call-ID as correlation id, the capture id, password and node name) and
//! sends it over UDP or TCP.
//!
//! A TCP connection that fails is dropped and re-opened at most once a second; messages
//! that cannot be sent meanwhile are dropped and counted, so a dead capture server never
//! backs up into the probe.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::Receiver;
use vqprobe_wire::decode::Transport;
use vqprobe_wire::hep::{self, HepPacket};

use super::{HepOut, HepStats};
use crate::config::{HepConfig, HepEndpoint, HepTransport};

/// Fixed chunks of every packet sent.
#[derive(Debug, Clone)]
struct Identity {
    capture_id: u32,
    password: Vec<u8>,
    node_name: Vec<u8>,
    report_type: u8,
}

enum Conn {
    Udp(UdpSocket),
    Tcp {
        target: String,
        stream: Option<TcpStream>,
        last_try: Option<Instant>,
    },
}

impl Conn {
    fn open(ep: &HepEndpoint) -> Result<Conn> {
        match ep.transport {
            HepTransport::Udp => {
                let to: SocketAddr = ep
                    .host_port
                    .to_socket_addrs()
                    .with_context(|| format!("resolving HEP address {}", ep.host_port))?
                    .next()
                    .with_context(|| format!("HEP address {} resolves to nothing", ep.host_port))?;
                let bind: SocketAddr = if to.is_ipv6() {
                    "[::]:0".parse()?
                } else {
                    "0.0.0.0:0".parse()?
                };
                let s = UdpSocket::bind(bind).context("HEP UDP socket")?;
                s.connect(to).context("HEP UDP socket")?;
                Ok(Conn::Udp(s))
            }
            HepTransport::Tcp => Ok(Conn::Tcp {
                target: ep.host_port.clone(),
                stream: None,
                last_try: None,
            }),
        }
    }

    /// Sends one packet; `false` when it could not be sent.
    fn send(&mut self, pkt: &[u8]) -> bool {
        match self {
            // A refused datagram (nobody listening yet) is an error on the next send;
            // either way this one is counted as not sent.
            Conn::Udp(s) => s.send(pkt).is_ok(),
            Conn::Tcp {
                target,
                stream,
                last_try,
            } => {
                if stream.is_none() {
                    if last_try.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                        return false;
                    }
                    *last_try = Some(Instant::now());
                    *stream = target
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).ok())
                        .inspect(|s| {
                            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                            let _ = s.set_nodelay(true);
                        });
                }
                let Some(s) = stream else {
                    return false;
                };
                if s.write_all(pkt).is_ok() {
                    true
                } else {
                    *stream = None;
                    false
                }
            }
        }
    }
}

/// Starts the exporter for `cfg.address`; it runs until every sender of `rx` is gone.
///
/// # Errors
/// The address cannot be resolved or the UDP socket not opened (TCP connects later).
pub fn spawn(
    cfg: &HepConfig,
    rx: Receiver<HepOut>,
    stats: Arc<HepStats>,
) -> Result<JoinHandle<()>> {
    let ep = cfg
        .export_endpoint()
        .with_context(|| format!("hep.address {:?}", cfg.address))?;
    let mut conn = Conn::open(&ep)?;
    let id = Identity {
        capture_id: cfg.capture_id,
        password: cfg.password.clone().into_bytes(),
        node_name: cfg.node_name.clone().into_bytes(),
        report_type: cfg.report_type,
    };
    std::thread::Builder::new()
        .name("vqprobe-hep-out".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(2048);
            for m in rx.iter() {
                buf.clear();
                let counter = match &m {
                    HepOut::Sip { .. } => &stats.sent_sip,
                    HepOut::Rtcp { .. } => &stats.sent_rtcp,
                    HepOut::Report { .. } => &stats.sent_report,
                };
                if encode(&id, &m, &mut buf).is_err() || !conn.send(&buf) {
                    stats.dropped_send.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .context("spawning HEP exporter")
}

/// Writes one message as HEPv3.
fn encode(id: &Identity, m: &HepOut, out: &mut Vec<u8>) -> Result<(), hep::HepError> {
    let (at, src, dst, ip_proto, proto_type, call_id, payload) = match m {
        HepOut::Sip {
            at,
            src,
            dst,
            transport,
            payload,
            call_id,
        } => (
            *at,
            *src,
            *dst,
            match transport {
                Transport::Udp => hep::IPPROTO_UDP,
                Transport::Tcp => hep::IPPROTO_TCP,
            },
            hep::PROTO_SIP,
            call_id.as_bytes(),
            payload.as_slice(),
        ),
        HepOut::Rtcp {
            at,
            src,
            dst,
            call_id,
            json,
        } => (
            *at,
            *src,
            *dst,
            hep::IPPROTO_UDP,
            hep::PROTO_RTCP,
            call_id.as_bytes(),
            json.as_bytes(),
        ),
        HepOut::Report {
            at,
            src,
            dst,
            call_id,
            json,
        } => (
            *at,
            *src,
            *dst,
            hep::IPPROTO_UDP,
            id.report_type,
            call_id.as_bytes(),
            json.as_bytes(),
        ),
    };
    let ns = at.as_nanos().max(0);
    let secs = u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
    let usecs = u32::try_from((ns % 1_000_000_000) / 1_000).unwrap_or(0);
    let nonempty = |b: &[u8]| !b.is_empty();
    let p = HepPacket {
        version: 3,
        ip_proto,
        src,
        dst,
        time: Some((secs, usecs)),
        proto_type,
        capture_id: id.capture_id,
        auth_key: Some(id.password.as_slice()).filter(|b| nonempty(b)),
        correlation_id: Some(call_id).filter(|b| nonempty(b)),
        node_name: Some(id.node_name.as_slice()).filter(|b| nonempty(b)),
        keepalive_s: None,
        payload,
    };
    hep::v3::encode(&p, out)
}
