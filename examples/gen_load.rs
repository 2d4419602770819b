//! Writes the load capture for the speed comparison with tshark: ~200 concurrent SIP calls,
//! each with two-way PCMU 20 ms RTP (seeded small jitter, ~0.5 % loss) and RTCP SR every
//! 5 s per direction, ≥ 1,000,000 RTP packets in all.
//!
//! ```text
//! cargo run --release --example gen_load -- OUT.pcap [--calls 200] [--packets 1000000]
//!     [--seed 1]
//! ```
//!
//! Packets are produced per 20 ms tick and merged through a small heap, so memory stays at
//! about one tick of packets however large the file.

#[path = "../tests/support/capgen.rs"]
mod capgen;
#[path = "../tests/support/loadgen.rs"]
mod loadgen;

use loadgen::{run, Options};
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> String {
    "usage: gen_load OUT.pcap [--calls N] [--packets N] [--seed N]".to_string()
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    let mut o = Options {
        out: PathBuf::new(),
        calls: 200,
        packets: 1_000_000,
        seed: 1,
    };
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--calls" => {
                o.calls = u32::try_from(value("--calls")?).map_err(|_| "--calls: too large")?
            }
            "--packets" => o.packets = value("--packets")?,
            "--seed" => o.seed = value("--seed")?,
            "-h" | "--help" => return Err(usage()),
            _ if a.starts_with('-') => return Err(format!("unknown option {a}\n{}", usage())),
            _ if out.is_none() => out = Some(PathBuf::from(a)),
            _ => return Err(usage()),
        }
    }
    o.out = out.ok_or_else(usage)?;
    if o.calls == 0 || o.calls > 60_000 {
        return Err("--calls must be in 1..=60000".to_string());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_load: {}: {e}", o.out.display());
            ExitCode::FAILURE
        }
    }
}
