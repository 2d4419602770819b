//! Writes the demo day of `vqprobe run --demo` to a file, for `vqprobe analyze` or
//! Wireshark: `cargo run --release --example demo_day -- OUT.pcap [HOUR]` (HOUR: the UTC
//! hour of the live point, which shapes the busy hours; default 12).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: demo_day OUT.pcap [HOUR]");
        return ExitCode::from(2);
    };
    let hour: u64 = match args.next().map(|h| h.parse()) {
        None => 12,
        Some(Ok(h)) if h < 24 => h,
        Some(_) => {
            eprintln!("HOUR must be 0 to 23");
            return ExitCode::from(2);
        }
    };
    let plan = vqprobe::demo::plan(hour * 3600);
    let written = std::fs::File::create(&out)
        .map(|f| std::io::BufWriter::with_capacity(1 << 20, f))
        .and_then(|w| vqprobe::demo::write_capture(&plan, w));
    match written {
        Ok(n) => {
            let (calls, agents, mnos) = plan.counts();
            eprintln!("{out}: {n} packets, {calls} calls, {agents} agents, {mnos} MNOs");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{out}: {e}");
            ExitCode::from(2)
        }
    }
}
