//! tshark's `-z rtp,streams` report: parsing its rows and comparing them with vqprobe's
//! stream records (the oracle of `tshark_oracle.rs` and `real_user_agents.rs`).
//!
//! Include it with `#[path = "support/tshark.rs"] mod tshark;`.
#![allow(dead_code)]

use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

/// Figures tshark prints with 3 decimals: half a unit of the last place, plus slack.
pub const TOL_MS: f64 = 0.0011;

// ---------------------------------------------------------------------------------------
// Parsing tshark's rtp,streams lines
// ---------------------------------------------------------------------------------------

/// One row of tshark's table. Columns (4.0.17): Start, End, Src IP, Port, Dest IP, Port,
/// SSRC, Payload (may hold spaces and commas: "g711A, telephone-event"), Pkts,
/// Lost "(pct%)", Min/Mean/Max Delta, Min/Mean/Max Jitter, Problems ("X" or nothing).
#[derive(Debug, Clone)]
pub struct TsharkStream {
    /// Start time, seconds from the capture's first packet.
    pub start: f64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
    pub payload: String,
    pub pkts: u64,
    pub lost: i64,
    pub max_delta: f64,
    pub max_jitter: f64,
    pub mean_jitter: f64,
}

impl TsharkStream {
    /// vqprobe's spelling of the SSRC: `0x` + 8 lowercase hex digits.
    pub fn ssrc_hex(&self) -> String {
        format!("0x{:08x}", self.ssrc)
    }

    pub fn label(&self) -> String {
        format!(
            "{} {} -> {} ({}, {} pkts)",
            self.ssrc_hex(),
            self.src,
            self.dst,
            self.payload,
            self.pkts
        )
    }
}

fn parse_f64(tok: &str, what: &str) -> Result<f64, String> {
    tok.parse()
        .map_err(|e| format!("{what} {tok:?} is not a number: {e}"))
}

/// Fixed fields from the left, numeric fields from the right; the payload is what is left.
pub fn parse_row(line: &str) -> Result<TsharkStream, String> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    // 7 left fields + payload (>= 1 token) + pkts, lost, pct, 6 figures.
    if toks.len() < 7 + 1 + 9 {
        return Err(format!("{} fields, too few for a stream row", toks.len()));
    }
    let ip = |tok: &str| -> Result<IpAddr, String> {
        tok.parse()
            .map_err(|e| format!("address {tok:?} does not parse: {e}"))
    };
    let port = |tok: &str| -> Result<u16, String> {
        tok.parse()
            .map_err(|e| format!("port {tok:?} does not parse: {e}"))
    };
    let src = SocketAddr::new(ip(toks[2])?, port(toks[3])?);
    let dst = SocketAddr::new(ip(toks[4])?, port(toks[5])?);
    let ssrc_tok = toks[6];
    let ssrc = ssrc_tok
        .strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| format!("SSRC {ssrc_tok:?} is not 0x + hex"))?;

    let mut right = &toks[7..];
    if right.last() == Some(&"X") {
        right = &right[..right.len() - 1];
    }
    let n = right.len();
    if n < 10 {
        return Err(format!("{n} fields after the SSRC, need payload + 9"));
    }
    let max_jitter = parse_f64(right[n - 1], "Max Jitter")?;
    let mean_jitter = parse_f64(right[n - 2], "Mean Jitter")?;
    let _min_jitter = parse_f64(right[n - 3], "Min Jitter")?;
    let max_delta = parse_f64(right[n - 4], "Max Delta")?;
    let _mean_delta = parse_f64(right[n - 5], "Mean Delta")?;
    let _min_delta = parse_f64(right[n - 6], "Min Delta")?;
    let pct = right[n - 7];
    if !(pct.starts_with('(') && pct.ends_with("%)")) {
        return Err(format!("lost percentage {pct:?} is not \"(N%)\""));
    }
    let lost: i64 = right[n - 8]
        .parse()
        .map_err(|e| format!("Lost {:?} is not an integer: {e}", right[n - 8]))?;
    let pkts: u64 = right[n - 9]
        .parse()
        .map_err(|e| format!("Pkts {:?} is not an integer: {e}", right[n - 9]))?;
    Ok(TsharkStream {
        start: parse_f64(toks[0], "Start time")?,
        src,
        dst,
        ssrc,
        payload: right[..n - 9].join(" "),
        pkts,
        lost,
        max_delta,
        max_jitter,
        mean_jitter,
    })
}

/// Every stream row of a report. Banner, header and rule lines are skipped; any other
/// line must parse, so a format change fails loudly instead of matching nothing.
pub fn parse_report(text: &str) -> Result<Vec<TsharkStream>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('=') || t.starts_with("Start time"))
        })
        .map(|(i, l)| parse_row(l).map_err(|e| format!("line {}: {e}: {l:?}", i + 1)))
        .collect()
}

/// Compares one tshark row with vqprobe's stream; pushes one message per differing figure.
pub fn compare_stream(file: &str, t: &TsharkStream, s: &Value, errs: &mut Vec<String>) {
    let ctx = format!("{file}: {}", t.label());
    let mut fail = |field: &str, msg: String| errs.push(format!("{ctx}: `{field}`: {msg}"));

    match s["packets"].as_u64() {
        Some(p) if p == t.pkts => {}
        _ => fail(
            "packets",
            format!("vqprobe {}, tshark Pkts {}", s["packets"], t.pkts),
        ),
    }
    let mut near = |field: &str, col: &str, want: f64| match s[field].as_f64() {
        Some(got) if (got - want).abs() <= TOL_MS => {}
        Some(got) => fail(
            field,
            format!(
                "vqprobe {got}, tshark {col} {want:.3} (diff {:.4})",
                got - want
            ),
        ),
        None => fail(
            field,
            format!("vqprobe {}, tshark {col} {want:.3}", s[field]),
        ),
    };
    near("max_delta_ms", "Max Delta", t.max_delta);
    if s["max_jitter_ms"].is_null() {
        // vqprobe knows no clock for this payload: tshark must not have known one either
        // (it then prints Min Jitter -1 and zero Max/Mean).
        if t.max_jitter != 0.0 || t.mean_jitter != 0.0 {
            fail(
                "max_jitter_ms",
                format!(
                    "vqprobe null (no clock), tshark Max/Mean Jitter {:.3}/{:.3}",
                    t.max_jitter, t.mean_jitter
                ),
            );
        }
    } else {
        near("max_jitter_ms", "Max Jitter", t.max_jitter);
        near("mean_jitter_ms", "Mean Jitter", t.mean_jitter);
    }
    // tshark's Lost is (last-arrived seq − first + 1) − Pkts: duplicates and a reordered
    // last packet drive it negative, where the contract's RFC 3550 loss does not.
    if s["duplicates"] == 0 && s["out_of_order"] == 0 {
        match s["lost"].as_i64() {
            Some(l) if l == t.lost => {}
            _ => errs.push(format!(
                "{ctx}: `lost`: vqprobe {}, tshark Lost {} (stream has no duplicates or \
                 reordering, so they must agree)",
                s["lost"], t.lost
            )),
        }
    }
}
