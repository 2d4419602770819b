//! vqprobe in a Homer world, with Kamailio as the real peer on both sides.
//!
//! * Export: `vqprobe run --replay` of a generated call (SIP, RTP, an SR/RR exchange)
//!   with `[hep] address` pointing at Kamailio's `sipcapture` module (the historic Homer
//!   capture server) storing into SQLite. Kamailio's HEP parser is the oracle for every
//!   chunk: its `event_route[sipcapture:request]` logs each chunk through `$hep(…)`,
//!   and the rows it stores (`sip_capture`, `rtcp_capture`, `report_capture`) carry the
//!   correlation id, capture id, addresses and times it read. (Debian's tshark 4.0 has
//!   no HEP dissector: `tshark -G protocols` lists none, `-d udp.port==9060,hep` is
//!   refused; so tshark checks the XR payloads in `rtcp_xr.rs` instead.)
//! * Input: Kamailio's `siptrace` module mirroring a real call (sipp UAC → Kamailio
//!   proxy → sipp UAS) as HEPv3 over UDP, HEPv3 over TCP and HEPv2 over UDP to a
//!   vqprobe with no capture interface at all; the HEP-fed probe records the call.
//!
//! Needs kamailio with the sipcapture, siptrace, db_sqlite modules and sipp; without
//! them it prints "SKIPPED" and passes (`scripts/install-deps.sh` installs them).

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/kamailio.rs"]
mod kamailio;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use capgen::*;
use daemon::{calls_or_empty, free_port, wait_for, Daemon, Workdir};
use kamailio::Kamailio;
use serde_json::Value;

const CALL_ID: &str = "hep-export-1@10.0.0.1";
const CAPTURE_ID: u32 = 2001;
const PASSWORD: &str = "myHep";
const NODE: &str = "probe-a";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address literal")
}

/// A `sipcapture` node. The storing node (`forward_to: None`) stores what it reads into
/// the SQLite tables. The front node logs every chunk of every HEP packet through
/// `$hep(…)` in `event_route[sipcapture:request]` and forwards the packet unchanged to
/// the storing node (`sip_capture_forward`, a Homer HEP proxy): Kamailio 5.6 cannot
/// both run that event route and store HEPv3 SIP in one node (with `nonsip_hook` it
/// hands the undecapsulated packet to the SIP parser).
fn capture_cfg(port: u16, db: &std::path::Path, forward_to: Option<u16>) -> String {
    let hook = match forward_to {
        Some(to) => format!(
            r#"modparam("sipcapture", "nonsip_hook", 1)
event_route[sipcapture:request] {{
    xlog("L_NOTICE", "HEPCHUNKS|v=$hep(version)|family=$hep(0x001)|proto=$hep(0x002)|src=$hep(0x003)|dst=$hep(0x004)|sport=$hep(0x007)|dport=$hep(0x008)|tsec=$hep(0x009)|tusec=$hep(0x00a)|type=$hep(0x00b)|capture_id=$hep(0x00c)|key=$hep(0x00e)|cid=$hep(0x011)|payload_len=$(hep(0x00f){{s.len}})|\n");
    sip_capture_forward("sip:127.0.0.1:{to}");
    return 0;
}}
"#
        ),
        None => String::new(),
    };
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
auto_aliases=no
tcp_accept_hep3=yes
tcp_accept_no_cl=yes
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="{modules}/"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "db_sqlite.so"
loadmodule "sipcapture.so"
modparam("sipcapture", "db_url", "sqlite:///{db}")
modparam("sipcapture", "capture_on", 1)
modparam("sipcapture", "hep_capture_on", 1)
modparam("sipcapture", "capture_node", "homer01")
{hook}
request_route {{
    sip_capture("sip_capture");
    drop;
}}
onreply_route {{
    sip_capture("sip_capture");
    drop;
}}
"#,
        modules = kamailio::modules().display(),
        db = db.display()
    )
}

/// The generated call: SIP dialog, two PCMU streams, an SR from the caller and the
/// callee's RR about it. Returns the scenario and the capture times (µs) of its SIP
/// messages and RTCP datagrams.
/// (capture time µs, payload) of each datagram of a kind.
type Sent = Vec<(u64, Vec<u8>)>;

fn scenario() -> (Scenario, Sent, Sent) {
    let (a, b) = (addr("10.0.0.1:40000"), addr("10.0.0.2:50000"));
    let dialog = SipDialog::new(
        CALL_ID,
        "+447700900123",
        "+15551230000",
        addr("10.0.0.1:5060"),
        addr("10.0.0.2:5060"),
    );
    let t_invite = BASE_TIME + secs(1);
    let t_answer = t_invite + ms(500);
    let start = t_answer + ms(20);
    let ab = StreamSpec::pcmu(a, b, 0x1111_2222, start, 600);
    let ba = StreamSpec::pcmu(b, a, 0x3333_4444, start + us(5_000), 600);
    let mut sc = Scenario::new();
    sc.add_stream(&ab);
    sc.add_stream(&ba);
    let t_sr = start + secs(5);
    let ntp = ntp_from_nanos(t_sr);
    let sr = compound(&[
        rtcp_sr(0x1111_2222, ntp, 40_000, 250, 40_000, &[]),
        rtcp_sdes_cname(0x1111_2222, "a@10.0.0.1"),
    ]);
    let rr = compound(&[rtcp_rr(
        0x3333_4444,
        &[capgen::ReportBlock {
            ssrc: 0x1111_2222,
            fraction_lost: 3,
            cumulative_lost: 2,
            ext_highest_seq: 0x0001_0203,
            jitter: 17,
            lsr: ntp_middle32(ntp),
            dlsr: 0x0000_8000,
        }],
    )]);
    let rtcp_a = addr("10.0.0.1:40001");
    let rtcp_b = addr("10.0.0.2:50001");
    let t_rr = t_sr + ms(600);
    sc.push(Event::udp(t_sr, rtcp_a, rtcp_b, sr.clone()));
    sc.push(Event::udp(t_rr, rtcp_b, rtcp_a, rr.clone()));
    let t_bye = ba.end_time() + ms(20);
    let sip = dialog.completed(t_invite, t_answer, t_bye, &Sdp::pcmu(a), &Sdp::pcmu(b));
    let sip_times = sip
        .iter()
        .map(|e| (e.time / 1_000, e.datagram.payload.clone()))
        .collect();
    sc.extend(sip);
    (sc, sip_times, vec![(t_sr / 1_000, sr), (t_rr / 1_000, rr)])
}

fn rows(db: &std::path::Path, table: &str) -> Vec<BTreeMap<String, Value>> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut st) = conn.prepare(&format!("SELECT * FROM {table} ORDER BY id")) else {
        return Vec::new();
    };
    let names: Vec<String> = st.column_names().map(str::to_string).collect();
    let out = st.query_map([], |r| {
        let mut m = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            let v = match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(x) => Value::from(x),
                rusqlite::types::ValueRef::Real(x) => Value::from(x),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    Value::from(String::from_utf8_lossy(t).into_owned())
                }
            };
            m.insert(n.clone(), v);
        }
        Ok(m)
    });
    out.map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(i64::MIN)
}

/// Kamailio's own reading of each HEP packet (the event route's log lines).
fn chunk_lines(log: &str) -> Vec<BTreeMap<String, String>> {
    log.lines()
        .filter_map(|l| l.split_once("HEPCHUNKS|").map(|(_, r)| r))
        .map(|r| {
            r.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn sipcapture_stores_vqprobe_sip_rtcp_and_reports_by_call_id_over_udp() {
    export_to_sipcapture("udp");
}

#[test]
fn sipcapture_stores_vqprobe_sip_rtcp_and_reports_by_call_id_over_tcp() {
    export_to_sipcapture("tcp");
}

fn export_to_sipcapture(transport: &str) {
    if !daemon::is_root() || !kamailio::available(&["sipcapture", "db_sqlite", "xlog", "pv"]) {
        println!("SKIPPED: needs root and kamailio with sipcapture and db_sqlite");
        return;
    }
    kamailio::check_module_columns();
    let work = Workdir::new();
    let homer = work.path().join("homer.db");
    kamailio::create_capture_db(&homer);
    let store_port = free_port();
    let mut store = Kamailio::start(work.path(), "store", &capture_cfg(store_port, &homer, None));
    let port = free_port();
    let mut front = Kamailio::start(
        work.path(),
        "front",
        &capture_cfg(port, &homer, Some(store_port)),
    );

    let (sc, sip, rtcp) = scenario();
    let pcap = work.path().join("call.pcap");
    sc.write(&pcap, FileFormat::PcapNanos, LinkLayer::Ethernet)
        .expect("capture");
    let db = work.db();
    let cfg = format!(
        "[capture]\nlocal_networks = [\"10.0.0.2/32\"]\n\
[hep]\naddress = \"{transport}://127.0.0.1:{port}\"\ncapture_id = {CAPTURE_ID}\n\
password = \"{PASSWORD}\"\nnode_name = \"{NODE}\"\n"
    );
    let mut d = Daemon::spawn(
        &work,
        &db,
        &cfg,
        &[
            "--replay",
            pcap.to_str().expect("utf-8 path"),
            "--speed",
            "0",
        ],
    );
    let done = wait_for(Duration::from_secs(30), || {
        calls_or_empty(&db)
            .iter()
            .any(|c| c["sip_call_id"] == CALL_ID && c["status"] == "completed")
    });
    assert!(
        done,
        "vqprobe did not finish the call; stderr:\n{}",
        d.stderr()
    );
    d.terminate(Duration::from_secs(10));
    let stored = wait_for(Duration::from_secs(10), || {
        rows(&homer, "sip_capture").len() >= sip.len()
            && rows(&homer, "rtcp_capture").len() >= rtcp.len()
            && rows(&homer, "report_capture").iter().any(|r| {
                r["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("\"event\":\"end\""))
            })
    });
    let log = front.log();
    let store_log = store.log();
    front.stop();
    store.stop();
    assert!(
        stored,
        "sipcapture did not store everything; front:\n{log}\nstore:\n{store_log}\nvqprobe:\n{}",
        d.stderr()
    );

    // What Homer's capture server holds for the call (shown with --nocapture).
    for t in ["sip_capture", "rtcp_capture", "report_capture"] {
        for r in rows(&homer, t) {
            let msg = r["msg"].as_str().unwrap_or_default();
            println!(
                "{t}: id={} micro_ts={} correlation_id={} node={} {}:{} -> {}:{} method={} msg={}",
                r["id"],
                r["micro_ts"],
                r["correlation_id"],
                r["node"],
                r["source_ip"],
                r["source_port"],
                r["destination_ip"],
                r["destination_port"],
                r.get("method").unwrap_or(&Value::Null),
                msg.lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(160)
                    .collect::<String>()
            );
        }
    }

    // SIP: one row per message, the original addresses and capture times, correlated
    // by the Call-ID, the capture id in the node name Kamailio composes.
    let sip_rows = rows(&homer, "sip_capture");
    assert_eq!(sip_rows.len(), sip.len(), "{sip_rows:?}");
    for (row, (t_us, payload)) in sip_rows.iter().zip(&sip) {
        assert_eq!(row["callid"], CALL_ID);
        assert_eq!(row["correlation_id"], CALL_ID);
        assert_eq!(row["node"], format!("homer01:{CAPTURE_ID}"));
        assert_eq!(
            int(&row["micro_ts"]),
            *t_us as i64,
            "capture time of {row:?}"
        );
        assert_eq!(
            row["msg"].as_str().map(str::as_bytes),
            Some(payload.as_slice())
        );
        let from_caller = payload.starts_with(b"INVITE")
            || payload.starts_with(b"ACK")
            || payload.starts_with(b"BYE");
        let (src, dst) = if from_caller {
            ("10.0.0.1", "10.0.0.2")
        } else {
            ("10.0.0.2", "10.0.0.1")
        };
        assert_eq!(
            (row["source_ip"].as_str(), row["destination_ip"].as_str()),
            (Some(src), Some(dst))
        );
        assert_eq!(
            (int(&row["source_port"]), int(&row["destination_port"])),
            (5060, 5060)
        );
    }
    // RTCP: Homer's JSON, by Call-ID.
    let rtcp_rows = rows(&homer, "rtcp_capture");
    assert_eq!(rtcp_rows.len(), rtcp.len(), "{rtcp_rows:?}");
    for (row, (t_us, _)) in rtcp_rows.iter().zip(&rtcp) {
        assert_eq!(row["correlation_id"], CALL_ID);
        assert_eq!(int(&row["micro_ts"]), *t_us as i64);
    }
    let sr: Value = serde_json::from_str(rtcp_rows[0]["msg"].as_str().expect("msg")).expect("json");
    assert_eq!(
        (sr["type"].as_u64(), sr["ssrc"].as_u64()),
        (Some(200), Some(0x1111_2222))
    );
    assert_eq!(sr["sender_information"]["packets"], 250);
    assert_eq!(sr["sdes_ssrc"], 0x1111_2222u32);
    let rr: Value = serde_json::from_str(rtcp_rows[1]["msg"].as_str().expect("msg")).expect("json");
    assert_eq!(
        (rr["type"].as_u64(), rr["ssrc"].as_u64()),
        (Some(201), Some(0x3333_4444))
    );
    let rb = &rr["report_blocks"][0];
    assert_eq!(
        (
            rb["source_ssrc"].as_u64(),
            rb["fraction_lost"].as_u64(),
            rb["packets_lost"].as_i64()
        ),
        (Some(0x1111_2222), Some(3), Some(2))
    );
    assert_eq!(
        (rb["ia_jitter"].as_u64(), rb["dlsr"].as_u64()),
        (Some(17), Some(0x8000))
    );
    assert_eq!(
        (
            rtcp_rows[0]["source_ip"].as_str(),
            int(&rtcp_rows[0]["source_port"])
        ),
        (Some("10.0.0.1"), 40001)
    );

    // Reports: interval ones while the call runs, one at its end, by Call-ID.
    let reports = rows(&homer, "report_capture");
    let end: Vec<Value> = reports
        .iter()
        .filter(|r| r["correlation_id"] == CALL_ID)
        .filter_map(|r| serde_json::from_str::<Value>(r["msg"].as_str()?).ok())
        .filter(|m| m["event"] == "end")
        .collect();
    assert_eq!(end.len(), 1, "{reports:?}");
    let stored_call = calls_or_empty(&db)
        .into_iter()
        .find(|c| c["sip_call_id"] == CALL_ID)
        .expect("stored call");
    assert_eq!(
        end[0]["mos"], stored_call["mos"],
        "report MOS is the record's"
    );
    let streams = end[0]["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2);
    for s in streams {
        for k in [
            "direction",
            "codec",
            "mos",
            "mos_lq",
            "r_factor",
            "jitter_ms",
            "loss_ratio",
            "loss_runs",
        ] {
            assert!(!s[k].is_null(), "report stream lacks {k}: {s}");
        }
    }

    // Every chunk of every packet as Kamailio's HEP parser read it.
    let chunks = chunk_lines(&log);
    assert!(chunks.len() > sip.len() + rtcp.len(), "{log}");
    for c in &chunks {
        assert_eq!(c["v"], "3");
        assert_eq!((c["family"].as_str(), c["proto"].as_str()), ("2", "17"));
        assert_eq!(c["capture_id"], CAPTURE_ID.to_string());
        assert_eq!(c["key"], PASSWORD);
        assert_eq!(c["cid"], CALL_ID);
        assert!(["1", "5", "32"].contains(&c["type"].as_str()), "{c:?}");
        let t_us = c["tsec"].parse::<u64>().expect("tsec") * 1_000_000
            + c["tusec"].parse::<u64>().expect("tusec");
        let expected: Vec<u64> = match c["type"].as_str() {
            "1" => sip.iter().map(|(t, _)| *t).collect(),
            "5" => rtcp.iter().map(|(t, _)| *t).collect(),
            _ => Vec::new(),
        };
        if c["type"] == "32" {
            // Reports are stamped in capture time too: within the call, never wall time.
            assert!(
                (sip[0].0..=sip[sip.len() - 1].0).contains(&t_us),
                "report time {t_us} of {c:?}"
            );
        } else {
            assert!(expected.contains(&t_us), "time {t_us} of {c:?}");
        }
        if c["type"] == "1" {
            let (t, p) = sip
                .iter()
                .find(|(t, _)| *t == t_us)
                .expect("message at that time");
            assert_eq!(
                c["payload_len"],
                p.len().to_string(),
                "payload of the message at {t}"
            );
        }
    }
    let by_type = |t: &str| chunks.iter().filter(|c| c["type"] == t).count();
    assert_eq!((by_type("1"), by_type("5")), (sip.len(), rtcp.len()));
}

/// A Kamailio proxy in front of a sipp UAS whose `siptrace` mirrors every SIP message
/// it receives and sends (`trace_mode` 1) as HEP to `hep` (`;transport=tcp` for TCP).
fn proxy_cfg(sip_port: u16, uas_port: u16, hep_port: u16, version: u8, tcp: bool) -> String {
    let transport = if tcp { ";transport=tcp" } else { "" };
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:{sip_port}
listen=tcp:127.0.0.1:{sip_port}
mpath="{modules}/"
loadmodule "pv.so"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "siptrace.so"
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:{hep_port}{transport}")
modparam("siptrace", "hep_mode_on", 1)
modparam("siptrace", "hep_version", {version})
modparam("siptrace", "hep_capture_id", 4242)
modparam("siptrace", "trace_to_database", 0)
modparam("siptrace", "trace_on", 1)
modparam("siptrace", "trace_mode", 1)
request_route {{
    # sipp's BYE carries no Route header: every request goes to the UAS.
    if (has_totag()) {{
        loose_route();
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    $du = "sip:127.0.0.1:{uas_port}";
    t_relay();
}}
"#,
        modules = kamailio::modules().display()
    )
}

fn sipp(work: &Workdir, name: &str, args: &[&str]) -> daemon::ChildGuard {
    let out = std::fs::File::create(work.path().join(format!("{name}.out"))).expect("sipp log");
    let err = out.try_clone().expect("sipp log");
    let child = std::process::Command::new("sipp")
        .args(args)
        .current_dir(work.path())
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawning sipp");
    daemon::ChildGuard::new(&format!("sipp {name}"), child)
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn siptrace_feeds_a_probe_that_captures_nothing_itself() {
    if !daemon::is_root()
        || !daemon::have_command("sipp")
        || !kamailio::available(&["siptrace", "tm", "sl", "rr", "siputils", "pv"])
    {
        println!("SKIPPED: needs root, sipp and kamailio with siptrace");
        return;
    }
    let work = Workdir::new();
    let db = work.db();
    let hep_port = free_port();
    let cfg = format!(
        "[capture]\ninterfaces = []\n[store]\nflush_interval_ms = 100\n\
[hep]\nlisten = [\"udp://127.0.0.1:{hep_port}\", \"tcp://127.0.0.1:{hep_port}\"]\n"
    );
    let mut d = Daemon::spawn(&work, &db, &cfg, &[]);
    d.wait_stderr("HEP input on tcp://", Duration::from_secs(10));

    // Not HEP: two datagrams and a TCP stream are counted, never a crash.
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for bytes in [
        &b"OPTIONS sip:x SIP/2.0\r\n\r\n"[..],
        &b"HEP3\x00\x09\x00\x00\x00"[..],
    ] {
        junk.send_to(bytes, ("127.0.0.1", hep_port)).expect("send");
    }
    {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", hep_port)).expect("tcp");
        std::io::Write::write_all(&mut s, b"GET / HTTP/1.0\r\n\r\n").expect("write");
    }

    // (HEP version, over TCP, Call-ID)
    let runs = [
        (3u8, false, "hepv3-udp-1@127.0.0.1"),
        (3, true, "hepv3-tcp-1@127.0.0.1"),
        (2, false, "hepv2-udp-1@127.0.0.1"),
    ];
    let mut windows = Vec::new();
    for (i, (version, tcp, call_id)) in runs.iter().enumerate() {
        let (kport, uas_port, uac_port) = (free_port(), free_port(), free_port());
        let mut kam = Kamailio::start(
            work.path(),
            &format!("proxy{i}"),
            &proxy_cfg(kport, uas_port, hep_port, *version, *tcp),
        );
        let uas_p = uas_port.to_string();
        let mut uas = sipp(
            &work,
            &format!("uas{i}"),
            &[
                "-sn",
                "uas",
                "-i",
                "127.0.0.1",
                "-p",
                &uas_p,
                "-m",
                "1",
                "-timeout",
                "20s",
                "-nostdin",
            ],
        );
        std::thread::sleep(Duration::from_millis(300));
        let t0 = wall_ms();
        let remote = format!("127.0.0.1:{kport}");
        let uac_p = uac_port.to_string();
        let cid = call_id.replace("-1@", "-%u@");
        let mut uac = sipp(
            &work,
            &format!("uac{i}"),
            &[
                "-sn",
                "uac",
                &remote,
                "-i",
                "127.0.0.1",
                "-p",
                &uac_p,
                "-s",
                "1234",
                "-m",
                "1",
                "-d",
                "1000",
                "-cid_str",
                &cid,
                "-timeout",
                "20s",
                "-nostdin",
            ],
        );
        let st = uac.wait(Duration::from_secs(25));
        let t1 = wall_ms();
        let uac_out =
            std::fs::read_to_string(work.path().join(format!("uac{i}.out"))).unwrap_or_default();
        assert!(
            st.is_some_and(|s| s.success()),
            "sipp uac via kamailio failed:\n{uac_out}\n{}",
            kam.log()
        );
        let _ = uas.wait(Duration::from_secs(5));
        kam.stop();
        windows.push((t0, t1));
    }

    let all = wait_for(Duration::from_secs(15), || {
        let rows = calls_or_empty(&db);
        runs.iter().all(|(_, _, id)| {
            rows.iter()
                .any(|c| c["sip_call_id"] == *id && c["status"] == "completed")
        })
    });
    let rows = calls_or_empty(&db);
    assert!(
        all,
        "calls recorded from HEP: {rows:#?}\nvqprobe:\n{}",
        d.stderr()
    );
    for ((version, tcp, id), (t0, t1)) in runs.iter().zip(&windows) {
        let c = rows
            .iter()
            .find(|c| c["sip_call_id"] == *id)
            .expect("recorded");
        println!(
            "HEPv{version} over {}: {}",
            if *tcp { "TCP" } else { "UDP" },
            serde_json::to_string(c).unwrap_or_default()
        );
        assert_eq!(c["ended_reason"], "bye", "{c}");
        assert_eq!(c["to_number"], "1234", "{c}");
        // Times are Kamailio's, carried in the HEP time chunks (v3) or the
        // little-endian time header (v2): inside the wall-clock window of the call.
        let created = int(&c["created_at_ms"]);
        assert!(
            created >= t0 - 1_000 && created <= *t1,
            "created {created} outside [{t0}, {t1}]: {c}"
        );
        let dur = c["duration_seconds"].as_f64().expect("duration");
        assert!(
            (0.9..2.5).contains(&dur),
            "sipp paused 1 s before BYE: {dur} ({c})"
        );
    }
    let metrics = ureq::get(&format!("{}/metrics", d.base))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    println!(
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("vqprobe_hep") || l.contains("interface=\"hep\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        value("vqprobe_hep_malformed_packets_total"),
        3.0,
        "{metrics}"
    );
    assert!(value("vqprobe_hep_received_packets_total{version=\"2\"}") > 0.0);
    assert!(value("vqprobe_hep_received_packets_total{version=\"3\"}") > 0.0);
    d.terminate(Duration::from_secs(10));
}
