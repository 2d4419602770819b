//! The floor for offline reading: a bare libpcap loop over a capture file (open, then
//! `pcap_next_ex` until the end, touching each packet's length and nothing else), to
//! compare with `vqprobe analyze --stats` on the same file.
//!
//! ```text
//! cargo run --release --example pcap_floor -- FILE.pcap
//! ```

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pcap_floor FILE.pcap");
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let mut cap = match pcap::Capture::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcap_floor: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Ok(p) = cap.next_packet() {
        n += 1;
        bytes += u64::from(p.header.caplen);
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "pcap_floor: {n} packets ({bytes} bytes) in {s:.3} s = {:.0} packets/s",
        n as f64 / s
    );
    ExitCode::SUCCESS
}
