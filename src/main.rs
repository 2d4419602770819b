//! The `vqprobe` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use vqprobe::analyze;
use vqprobe::config::Config;
use vqprobe::engine::codec::{self, CodecTable};
use vqprobe::engine::emodel::{self, G107Params};

#[derive(Parser)]
#[command(
    name = "vqprobe",
    version,
    about = "Passive voice-quality probe (RTP/RTCP/SIP, RFC 3550, ITU-T G.107)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Json,
    Table,
}

#[derive(Subcommand)]
enum Cmd {
    /// The daemon: live capture (or a replayed file) into the store, until SIGTERM.
    Run {
        /// TOML config; embedded defaults without one.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Feed a capture file through the live path instead of capturing.
        #[arg(long, value_name = "FILE.pcap", conflicts_with = "demo")]
        replay: Option<PathBuf>,
        /// A generated demo day instead of capturing: ~300 calls over the last 24 h
        /// (several agents and MNOs, some bad), then 10 minutes live. Stores in a
        /// temporary database unless --db is given.
        #[arg(long, conflicts_with = "interface")]
        demo: bool,
        /// Replay speed: 1 = real time, X = X times faster, 0 = as fast as possible.
        #[arg(long, default_value_t = 1.0, requires = "replay")]
        speed: f64,
        /// Shift the replayed timestamps so the capture starts now (demos).
        #[arg(long, requires = "replay")]
        rebase_time: bool,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// The fleet aggregator: consume every probe's call records from NATS JetStream
    /// into PostgreSQL and serve the same /v1 API over all of them.
    Aggregate {
        /// NATS server URL (e.g. nats://127.0.0.1:4222).
        #[arg(long, value_name = "URL")]
        nats: String,
        /// PostgreSQL URL (e.g. postgres://vqprobe@127.0.0.1:5432/vqprobe).
        #[arg(long, value_name = "URL")]
        postgres: String,
        /// API address (default: the config's api.listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// TOML config: [api] keys and listen, [store] retention_days, [bus]
        /// subject_prefix and replicas.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate a config file and print the effective configuration.
    CheckConfig {
        /// TOML config.
        file: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Analyse a capture file offline and print every call and stream.
    Analyze {
        /// pcap or pcapng file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Networks of the probed host (repeatable); media to them is inbound.
        #[arg(long = "local-net", value_name = "CIDR")]
        local_net: Vec<IpNet>,
        #[command(flatten)]
        numbering: NumberingArgs,
        /// SIP header that names the agent.
        #[arg(long, default_value = "X-Agent-Id")]
        agent_header: String,
        /// Print throughput and peak memory to stderr.
        #[arg(long)]
        stats: bool,
    },
    /// What vqprobe makes of a number: E.164, country, line type and MNO.
    Number {
        /// Numbers in any format (`+919876543210`, `09876543210`, `0044 20 7946 0958`)
        /// or SIP/tel URIs.
        #[arg(required = true)]
        numbers: Vec<String>,
        /// TOML config whose `[calls]` numbering settings to use.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        numbering: NumberingArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The E-model as a calculator.
    Emodel {
        /// Codec name (PCMU, G729, ...) for Ie and Bpl.
        #[arg(long, conflicts_with_all = ["ie", "bpl"])]
        codec: Option<String>,
        /// Equipment impairment factor.
        #[arg(long, requires = "bpl")]
        ie: Option<f64>,
        /// Packet-loss robustness factor.
        #[arg(long, requires = "ie")]
        bpl: Option<f64>,
        /// Packet loss, percent.
        #[arg(long, default_value_t = 0.0)]
        ppl: f64,
        /// Burst ratio.
        #[arg(long = "burst-r", default_value_t = 1.0)]
        burst_r: f64,
        /// One-way mouth-to-ear delay Ta in ms (T = Ta, Tr = 2 Ta).
        #[arg(long = "delay-ms", default_value_t = 0.0)]
        delay_ms: f64,
        /// Use the simplified probe form (R = 93.2 − Id − Ie,eff) instead of full G.107.
        #[arg(long)]
        simplified: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// How numbers are read and which tables name their MNO.
#[derive(clap::Args, Default)]
struct NumberingArgs {
    /// Your MNO prefix table (`prefix,mno,country`); its rows win over libphonenumber.
    #[arg(long, value_name = "CSV")]
    mno_prefixes: Option<PathBuf>,
    /// Country whose national format numbers without `+` are read in (ISO code).
    #[arg(long, value_name = "CC")]
    default_country: Option<String>,
    /// Ported numbers from the MNP feed (`number,mno`).
    #[arg(long, value_name = "CSV")]
    ported_numbers: Option<PathBuf>,
}

impl NumberingArgs {
    /// The `[calls]` section with these flags over it.
    fn over(&self, mut calls: vqprobe::config::CallsConfig) -> vqprobe::config::CallsConfig {
        if let Some(p) = &self.mno_prefixes {
            calls.mno_prefixes = Some(p.clone());
        }
        if let Some(c) = &self.default_country {
            calls.default_country = Some(c.clone());
        }
        if let Some(p) = &self.ported_numbers {
            calls.ported_numbers = Some(p.clone());
        }
        calls
    }
}

/// Flags that override the config file.
#[derive(clap::Args, Default)]
struct OverrideArgs {
    /// Capture interface (repeatable); `any` for all.
    #[arg(long = "interface", value_name = "NAME")]
    interface: Vec<String>,
    /// API listen address.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// SQLite database path.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(flatten)]
    numbering: NumberingArgs,
    /// Networks of the probed host (repeatable).
    #[arg(long = "local-net", value_name = "CIDR")]
    local_net: Vec<IpNet>,
    /// Worker threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Capture threads per interface (kernel fanout by flow hash).
    #[arg(long, value_name = "N")]
    capture_threads: Option<usize>,
}

impl OverrideArgs {
    fn to_overrides(&self) -> vqprobe::config::Overrides {
        vqprobe::config::Overrides {
            interfaces: self.interface.clone(),
            listen: self.listen,
            db: self.db.clone(),
            mno_prefixes: self.numbering.mno_prefixes.clone(),
            default_country: self.numbering.default_country.clone(),
            ported_numbers: self.numbering.ported_numbers.clone(),
            local_nets: self.local_net.clone(),
            workers: self.workers,
            capture_threads: self.capture_threads,
        }
    }
}

fn effective_config(file: Option<&PathBuf>, o: &OverrideArgs) -> Result<Config> {
    let mut cfg = match file {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.apply(&o.to_overrides());
    cfg.validate()?;
    Ok(cfg)
}

fn run_daemon(
    config: Option<PathBuf>,
    replay: Option<PathBuf>,
    speed: f64,
    rebase_time: bool,
    o: &OverrideArgs,
) -> Result<()> {
    let cfg = effective_config(config.as_ref(), o)?;
    let pre = vqprobe::preflight::check(&cfg, replay.is_some());
    if !pre.ok() {
        bail!("{}", pre.problems.join("; "));
    }
    if !speed.is_finite() || speed < 0.0 {
        bail!("--speed must be 0 (as fast as possible) or a positive number, got {speed}");
    }
    let replay = replay.map(|file| vqprobe::daemon::Replay {
        file,
        speed,
        rebase_time,
        live_from: None,
        name: None,
    });
    let what = match &replay {
        Some(r) => format!("replaying {} at speed {}", r.file.display(), r.speed),
        None if cfg.capture.threads > 1 => format!(
            "capturing on {} with {} threads each",
            cfg.capture.interfaces.join(","),
            cfg.capture.threads
        ),
        None => format!("capturing on {}", cfg.capture.interfaces.join(",")),
    };
    serve(&cfg, replay, &what, || Ok(()))
}

/// `run --demo`: the generated day streamed through a pipe into the replay.
fn run_demo(config: Option<PathBuf>, o: &OverrideArgs) -> Result<()> {
    let mut cfg = effective_config(config.as_ref(), o)?;
    // The demo's site network, so directions come out as planned.
    if cfg.capture.local_networks.is_empty() {
        cfg.capture.local_networks = vec![vqprobe::demo::LOCAL_NET
            .parse()
            .context("the demo's local network")?];
    }
    // Its own database unless one was named, so demo calls never mix with real ones.
    let tmp = if o.db.is_none() {
        let dir = tempfile::Builder::new()
            .prefix("vqprobe-demo-")
            .tempdir()
            .context("creating a directory for the demo database")?;
        cfg.store.path = dir.path().join("demo.db");
        Some(dir)
    } else {
        None
    };
    let source = vqprobe::demo::DemoSource::start()?;
    let summary = source.summary();
    let replay = vqprobe::daemon::Replay {
        file: source.path(),
        speed: 1.0,
        rebase_time: true,
        live_from: Some(source.live_from()),
        name: Some("demo".into()),
    };
    let what = format!("demo: {summary}");
    let result = serve(&cfg, Some(replay), &what, move || source.opened());
    drop(tmp);
    result
}

/// Runs the daemon and its API until SIGTERM/SIGINT. `started` runs once both are up
/// (the demo lets go of its end of the pipe there).
fn serve(
    cfg: &Config,
    replay: Option<vqprobe::daemon::Replay>,
    what: &str,
    started: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let keys = vqprobe::api::KeySet::from_config(&cfg.api.key_hashes)
        .map_err(|e| anyhow::anyhow!("api.key_hashes / VQPROBE_API_KEYS: {e}"))?;
    vqprobe::api::check_listen(cfg.api.listen, &keys).map_err(anyhow::Error::msg)?;
    eprintln!(
        "vqprobe: {}",
        vqprobe::api::startup_notice(cfg.api.listen, &keys)
    );
    let daemon = vqprobe::daemon::Daemon::start(cfg, replay)?;
    let api = vqprobe::api::spawn(
        cfg.api.listen,
        vqprobe::api::ApiState {
            db_path: cfg.store.path.clone(),
            keys,
            probe: Some(daemon.probe()),
            metrics_require_auth: cfg.api.metrics_need_key(),
            store: None,
        },
    );
    let api = match api {
        Ok(a) => a,
        Err(e) => {
            // Leave nothing running behind the error.
            let _ = daemon.shutdown();
            return Err(e);
        }
    };
    eprintln!(
        "vqprobe: {what}, {} workers, store {}, api http://{}",
        cfg.pipeline.workers,
        cfg.store.path.display(),
        api.local_addr()
    );
    eprintln!("vqprobe: console http://{}/", api.local_addr());
    if let Err(e) = started() {
        let _ = daemon.shutdown();
        let _ = api.shutdown();
        return Err(e);
    }
    daemon.run_until(&stop);
    eprintln!("vqprobe: stopping");
    let result = daemon.shutdown();
    // The API goes last so /healthz says "stopping" while the pipeline drains.
    if let Err(e) = api.shutdown() {
        eprintln!("vqprobe: api: {e:#}");
    }
    result
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The numbering of `[calls]` (validated) with the flags over it.
fn load_numbering(
    calls: vqprobe::config::CallsConfig,
    args: &NumberingArgs,
) -> Result<vqprobe::engine::numbers::Numbering> {
    let calls = args.over(calls);
    vqprobe::daemon::load_numbering(&calls)
}

fn run_number(
    numbers: Vec<String>,
    config: Option<PathBuf>,
    args: NumberingArgs,
    format: Format,
) -> Result<()> {
    let calls = match &config {
        Some(p) => Config::load(p)?.calls,
        None => Config::default().calls,
    };
    let numbering = load_numbering(calls, &args)?;
    let reports: Vec<_> = numbers
        .iter()
        .map(|n| vqprobe::number::describe(&numbering, n))
        .collect();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
        Format::Table => print!("{}", vqprobe::number::table(&reports, &numbering)),
    }
    Ok(())
}

fn run_analyze(
    file: PathBuf,
    format: Format,
    local_net: Vec<IpNet>,
    numbering: NumberingArgs,
    agent_header: String,
    stats: bool,
) -> Result<()> {
    let numbers = load_numbering(Config::default().calls, &numbering)?;
    let mut cfg = vqprobe::engine::calls::CallConfig::with_numbering(Arc::new(numbers));
    cfg.local_nets = local_net;
    cfg.agent_header = agent_header;
    let started = Instant::now();
    let (analysis, damage) = analyze::analyze_file(&file, cfg)?;
    let elapsed = started.elapsed().as_secs_f64();
    {
        // Streamed: a capture of 50,000 calls is hundreds of MB of JSON, never held whole.
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut out, &analysis).context("writing JSON")?
            }
            Format::Table => out
                .write_all(vqprobe::report::table(&analysis).as_bytes())
                .context("writing the table")?,
        }
        writeln!(out).context("writing the output")?;
        out.flush().context("writing the output")?;
    }
    if stats {
        let pkts = analysis.capture.counters.packets;
        eprintln!(
            "stats: {pkts} packets in {elapsed:.3} s = {:.0} packets/s, peak RSS {:.1} MiB",
            pkts as f64 / elapsed.max(1e-9),
            peak_rss_kib().unwrap_or(0) as f64 / 1024.0
        );
    }
    if let Some(e) = damage {
        // Everything read before the damage was printed; the exit code says it is partial.
        bail!("{}: {e}", file.display());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_emodel(
    codec_name: Option<String>,
    ie: Option<f64>,
    bpl: Option<f64>,
    ppl: f64,
    burst_r: f64,
    delay_ms: f64,
    simplified: bool,
    format: Format,
) -> Result<()> {
    let (ie, bpl, wideband) = match (codec_name, ie, bpl) {
        (Some(name), _, _) => {
            let table = CodecTable::default();
            let imp = table.lookup(&name).with_context(|| {
                let known: Vec<&str> = codec::CODECS
                    .iter()
                    .filter(|c| c.is_scored())
                    .map(|c| c.name)
                    .collect();
                format!(
                    "unknown or unscored codec {name:?} (known: {})",
                    known.join(", ")
                )
            })?;
            (imp.ie, imp.bpl, imp.wideband)
        }
        (None, Some(ie), Some(bpl)) => (ie, bpl, false),
        _ => bail!("give --codec NAME, or --ie N with --bpl N"),
    };
    for (name, v) in [
        ("ppl", ppl),
        ("burst-r", burst_r),
        ("delay-ms", delay_ms),
        ("ie", ie),
        ("bpl", bpl),
    ] {
        if !v.is_finite() || v < 0.0 {
            bail!("--{name} must be a finite non-negative number, got {v}");
        }
    }
    let (r, mos, breakdown) = if simplified {
        let r = emodel::simplified_r(delay_ms, ie, bpl, ppl, burst_r);
        (r, emodel::mos_from_r(r), None)
    } else {
        let p = if wideband {
            G107Params::for_path_wideband(delay_ms, ie, bpl, ppl, burst_r)
        } else {
            G107Params::for_path(delay_ms, ie, bpl, ppl, burst_r)
        };
        let b = emodel::compute(&p);
        (b.r, b.mos, Some(b))
    };
    match format {
        Format::Json => {
            let mut v = serde_json::json!({ "r_factor": r, "mos": mos });
            if let (Some(b), Some(obj)) = (breakdown, v.as_object_mut()) {
                obj.insert("breakdown".into(), serde_json::to_value(b)?);
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            println!("r_factor {r:.6}\nmos {mos:.6}");
            if let Some(b) = breakdown {
                println!(
                    "ro {:.6}\nis {:.6}\nidte {:.6}\nidle {:.6}\nidd {:.6}\nie_eff {:.6}",
                    b.ro, b.is, b.idte, b.idle, b.idd, b.ie_eff
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run {
            config,
            replay,
            demo,
            speed,
            rebase_time,
            overrides,
        } => match (demo, replay) {
            (true, _) => run_demo(config, &overrides),
            (false, replay) => run_daemon(config, replay, speed, rebase_time, &overrides),
        },
        Cmd::Aggregate {
            nats,
            postgres,
            listen,
            config,
        } => effective_config(config.as_ref(), &OverrideArgs::default()).and_then(|cfg| {
            vqprobe::aggregate::run(
                &cfg,
                &vqprobe::aggregate::AggregateArgs {
                    nats_url: nats,
                    postgres_url: postgres,
                    listen,
                },
            )
        }),
        Cmd::CheckConfig { file, overrides } => {
            effective_config(Some(&file), &overrides).and_then(|cfg| {
                print!("{}", cfg.to_toml_string());
                let p = vqprobe::preflight::check(&cfg, false);
                for u in &p.unchecked {
                    eprintln!("vqprobe: not checked: {u}");
                }
                if p.ok() {
                    Ok(())
                } else {
                    bail!(
                        "`run` would refuse this config:\n  {}",
                        p.problems.join("\n  ")
                    )
                }
            })
        }
        Cmd::Analyze {
            file,
            format,
            local_net,
            numbering,
            agent_header,
            stats,
        } => run_analyze(file, format, local_net, numbering, agent_header, stats),
        Cmd::Number {
            numbers,
            config,
            numbering,
            format,
        } => run_number(numbers, config, numbering, format),
        Cmd::Emodel {
            codec,
            ie,
            bpl,
            ppl,
            burst_r,
            delay_ms,
            simplified,
            format,
        } => run_emodel(codec, ie, bpl, ppl, burst_r, delay_ms, simplified, format),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain joined, never a backtrace.
            let msg: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("vqprobe: {}", msg.join(": "));
            ExitCode::from(2)
        }
    }
}
