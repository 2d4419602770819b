//! HEP input: listeners that take HEP from agents already deployed and feed what it
//! carries into the pipeline as if captured — the original addresses, ports and
//! timestamps from the HEP chunks, the SIP, RTP or binary RTCP as the payload.
//!
//! UDP sockets take HEPv1, v2 and v3 (one packet per datagram); TCP connections a
//! stream of HEPv3 packets (v1/v2 carry no total length, so they cannot be framed on a
//! stream). Receiving threads decode and queue [`Received`] packets (a full queue drops
//! and counts); one feeder thread owns a [`Dispatcher`] and hands them to the workers.
//! Bytes that are not HEP are counted, never a panic; a TCP stream that stops being HEP
//! is closed.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use vqprobe_engine::time::Timestamp;
use vqprobe_wire::decode::{Segment, Transport};
use vqprobe_wire::hep::{self, HepError, HepPacket};

use crate::config::HepTransport;
use crate::hep::HepStats;
use crate::pipeline::Dispatcher;

/// Received packets waiting for the feeder, at most.
const QUEUE: usize = 65_536;
/// TCP connections served at once; more are refused.
const MAX_CONNECTIONS: usize = 64;
/// A HEPv3 packet is at most 65,535 bytes; a TCP buffer never holds more than two.
const MAX_TCP_BUFFER: usize = 2 * 65_536;
/// How often blocked reads look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// One decoded HEP packet, owned, on its way to the feeder.
#[derive(Debug)]
pub struct Received {
    at: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
    payload: Vec<u8>,
}

fn now() -> Timestamp {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_nanos(ns)
}

/// What the engine can take from a HEP packet: SIP, RTP, binary RTCP. `None` for the
/// rest (logs, reports, RTCP as JSON), which is counted as unsupported.
fn to_received(p: &HepPacket<'_>) -> Option<Received> {
    let transport = match p.ip_proto {
        hep::IPPROTO_TCP => Transport::Tcp,
        _ => Transport::Udp,
    };
    let usable = match p.proto_type {
        hep::PROTO_SIP => true,
        hep::PROTO_RTP => transport == Transport::Udp,
        hep::PROTO_RTCP => {
            transport == Transport::Udp && vqprobe_wire::rtcp::looks_like_rtcp(p.payload)
        }
        _ => false,
    };
    if !usable {
        return None;
    }
    Some(Received {
        at: p.time_ns().map_or_else(now, Timestamp::from_nanos),
        src: p.src,
        dst: p.dst,
        transport,
        payload: p.payload.to_vec(),
    })
}

/// Decodes one packet and queues it; counts what it was.
fn take(data: &[u8], tx: &Sender<Received>, stats: &HepStats) {
    match hep::parse(data) {
        Ok(p) => {
            if let Some(c) = stats.received.get(usize::from(p.version).saturating_sub(1)) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            match to_received(&p) {
                Some(r) => match tx.try_send(r) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                        stats.input_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                },
                None => {
                    stats.unsupported.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Err(HepError::Compressed) => {
            stats.unsupported.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The running listeners and feeder.
pub struct HepInput {
    /// Threads to join at shutdown (after setting the stop flag).
    pub threads: Vec<JoinHandle<Result<()>>>,
    /// Where each listener is bound (ports resolved when 0 was asked for).
    pub bound: Vec<(HepTransport, SocketAddr)>,
}

/// Binds every listener and starts the feeder on `disp`.
///
/// # Errors
/// A listener cannot be bound (address in use, no permission).
pub fn start(
    listen: &[(HepTransport, SocketAddr)],
    mut disp: Dispatcher,
    stats: Arc<HepStats>,
    stop: Arc<AtomicBool>,
) -> Result<HepInput> {
    let (tx, rx) = crossbeam_channel::bounded::<Received>(QUEUE);
    let mut threads = Vec::new();
    let mut bound = Vec::new();
    for &(transport, addr) in listen {
        let (stats, stop, tx) = (stats.clone(), stop.clone(), tx.clone());
        match transport {
            HepTransport::Udp => {
                let sock = UdpSocket::bind(addr)
                    .with_context(|| format!("binding HEP listener udp://{addr}"))?;
                sock.set_read_timeout(Some(POLL))?;
                bound.push((transport, sock.local_addr()?));
                threads.push(
                    std::thread::Builder::new()
                        .name("vqprobe-hep-udp".into())
                        .spawn(move || {
                            udp_loop(&sock, &tx, &stats, &stop);
                            Ok(())
                        })?,
                );
            }
            HepTransport::Tcp => {
                let l = TcpListener::bind(addr)
                    .with_context(|| format!("binding HEP listener tcp://{addr}"))?;
                l.set_nonblocking(true)?;
                bound.push((transport, l.local_addr()?));
                threads.push(
                    std::thread::Builder::new()
                        .name("vqprobe-hep-tcp".into())
                        .spawn(move || {
                            accept_loop(&l, &tx, &stats, &stop);
                            Ok(())
                        })?,
                );
            }
        }
    }
    drop(tx);
    threads.push(
        std::thread::Builder::new()
            .name("vqprobe-hep-in".into())
            .spawn(move || {
                feed(&rx, &mut disp);
                Ok(())
            })?,
    );
    Ok(HepInput { threads, bound })
}

fn udp_loop(sock: &UdpSocket, tx: &Sender<Received>, stats: &HepStats, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => take(buf.get(..n).unwrap_or_default(), tx, stats),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn accept_loop(
    l: &TcpListener,
    tx: &Sender<Received>,
    stats: &Arc<HepStats>,
    stop: &Arc<AtomicBool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    continue; // dropped: too many agents at once
                }
                open.fetch_add(1, Ordering::Relaxed);
                let (tx, stats, stop, gauge) =
                    (tx.clone(), stats.clone(), stop.clone(), open.clone());
                let h = std::thread::Builder::new()
                    .name("vqprobe-hep-conn".into())
                    .spawn(move || {
                        tcp_conn(s, &tx, &stats, &stop);
                        gauge.fetch_sub(1, Ordering::Relaxed);
                    });
                match h {
                    Ok(h) => conns.push(h),
                    Err(_) => {
                        open.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                conns.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
    for h in conns {
        let _ = h.join();
    }
}

fn tcp_conn(mut s: TcpStream, tx: &Sender<Received>, stats: &HepStats, stop: &AtomicBool) {
    if s.set_nonblocking(false).is_err() || s.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        loop {
            match hep::v3::frame_len(&buf) {
                Ok(Some(n)) if buf.len() >= n => {
                    take(buf.get(..n).unwrap_or_default(), tx, stats);
                    buf.drain(..n);
                }
                Ok(_) => break,
                Err(_) => {
                    // Not HEPv3: the stream cannot be resynchronised.
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        if buf.len() > MAX_TCP_BUFFER {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

/// Hands received packets to the workers, flushing partial batches when the input
/// goes quiet; ends when every listener is gone.
fn feed(rx: &Receiver<Received>, disp: &mut Dispatcher) {
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(r) => {
                let seg = Segment {
                    src: r.src,
                    dst: r.dst,
                    transport: r.transport,
                    payload: &r.payload,
                };
                disp.on_segment(r.at, seg, r.payload.len());
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => disp.flush(),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
    }
    disp.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_engine_takes() {
        let base = HepPacket {
            version: 3,
            ip_proto: hep::IPPROTO_UDP,
            src: "10.0.0.1:5060".parse().expect("addr"),
            dst: "10.0.0.2:5060".parse().expect("addr"),
            time: Some((1_700_000_000, 5)),
            proto_type: hep::PROTO_SIP,
            capture_id: 1,
            auth_key: None,
            correlation_id: None,
            node_name: None,
            keepalive_s: None,
            payload: b"BYE sip:a@b SIP/2.0\r\n\r\n",
        };
        let r = to_received(&base).expect("SIP is taken");
        assert_eq!(r.at, Timestamp::from_nanos(1_700_000_000_000_005_000));
        assert_eq!((r.src, r.transport), (base.src, Transport::Udp));
        let json_rtcp = HepPacket {
            proto_type: hep::PROTO_RTCP,
            payload: b"{\"type\":200}",
            ..base
        };
        assert!(to_received(&json_rtcp).is_none(), "JSON RTCP is not fed");
        let rtcp = HepPacket {
            proto_type: hep::PROTO_RTCP,
            payload: &[0x80, 201, 0, 1, 0, 0, 0, 1],
            ..base
        };
        assert!(to_received(&rtcp).is_some(), "binary RTCP is fed");
        let log = HepPacket {
            proto_type: hep::PROTO_LOG,
            ..base
        };
        assert!(to_received(&log).is_none());
    }
}
