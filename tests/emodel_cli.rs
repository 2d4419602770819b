//! `vqprobe emodel` reproduces `reference/ALGORITHMS.md` §7 tables A, B and C to 1e-3,
//! and fails cleanly on bad input (DESIGN.md: one-line error, non-zero exit, no panic).

use serde_json::Value;
use std::process::{Command, Output};

const TOL: f64 = 1e-3;

fn emodel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vqprobe"))
        .arg("emodel")
        .args(args)
        .output()
        .expect("spawn vqprobe emodel")
}

/// `emodel ARGS --format json` that must succeed; the parsed document.
fn emodel_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = emodel(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "vqprobe emodel {} failed ({}): {stderr}",
        all.join(" "),
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "vqprobe emodel {}: stdout is not JSON ({e}): {}",
            all.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Records `doc[path…]` ≉ `want` (or missing) in `errs`.
fn near(errs: &mut Vec<String>, ctx: &str, doc: &Value, path: &[&str], want: f64) {
    let v = path.iter().fold(doc, |v, k| &v[*k]);
    match v.as_f64() {
        Some(got) if (got - want).abs() <= TOL => {}
        Some(got) => errs.push(format!(
            "{ctx}: `{}`: vqprobe {got:.6}, table {want:.6} (diff {:.6})",
            path.join("."),
            got - want
        )),
        None => errs.push(format!(
            "{ctx}: `{}`: vqprobe {v}, table {want:.6}",
            path.join(".")
        )),
    }
}

fn finish(errs: Vec<String>, table: &str) {
    assert!(
        errs.is_empty(),
        "{table}: {} figure(s) differ:\n  {}",
        errs.len(),
        errs.join("\n  ")
    );
}

#[test]
fn table_a_full_g107_delay() {
    // Ta (ms), Idte, Idle, Idd, R, MOS — G.711 (Ie 0, Bpl 4.3), no loss, T = Ta, Tr = 2Ta.
    const ROWS: [(f64, f64, f64, f64, f64, f64); 7] = [
        (0.0, 0.0, 0.149046, 0.0, 93.206208, 4.409406),
        (100.0, 1.963791, 0.727733, 0.0, 90.663730, 4.354920),
        (150.0, 2.811844, 0.840747, 0.163531, 89.539132, 4.327546),
        (200.0, 3.570849, 0.935273, 3.044414, 85.804718, 4.223180),
        (250.0, 4.242856, 1.018587, 8.916710, 79.177101, 3.992519),
        (300.0, 4.833940, 1.094259, 14.760695, 72.666360, 3.719431),
        (400.0, 5.808211, 1.230127, 24.070089, 62.246827, 3.215599),
    ];
    let mut errs = Vec::new();
    for (ta, idte, idle, idd, r, mos) in ROWS {
        let ta_s = ta.to_string();
        let doc = emodel_json(&["--ie", "0", "--bpl", "4.3", "--delay-ms", &ta_s]);
        let ctx = format!("Table A, Ta = {ta} ms");
        near(&mut errs, &ctx, &doc, &["r_factor"], r);
        near(&mut errs, &ctx, &doc, &["mos"], mos);
        near(&mut errs, &ctx, &doc, &["breakdown", "idte"], idte);
        near(&mut errs, &ctx, &doc, &["breakdown", "idle"], idle);
        near(&mut errs, &ctx, &doc, &["breakdown", "idd"], idd);
    }
    finish(errs, "ALGORITHMS.md §7 A");
}

#[test]
fn table_b_full_g107_loss() {
    // Ie, Bpl, Ppl %, BurstR, Ie,eff, R, MOS — Ta = 0.
    const ROWS: [(&str, &str, &str, &str, f64, f64, f64); 8] = [
        ("0", "25.1", "1", "1", 3.639847, 89.566361, 4.328232),
        ("0", "25.1", "2", "1", 7.011070, 86.195138, 4.235019),
        ("0", "25.1", "5", "1", 15.780731, 77.425477, 3.923091),
        ("0", "25.1", "5", "2", 17.210145, 75.996063, 3.864123),
        ("0", "25.1", "10", "1", 27.065527, 66.140681, 3.411187),
        ("0", "4.3", "1", "1", 17.924528, 75.281679, 3.833916),
        ("11", "19", "2", "1", 19.0, 74.206208, 3.787558),
        ("15", "16.1", "1", "1", 19.678363, 73.527845, 3.757793),
    ];
    let mut errs = Vec::new();
    for (ie, bpl, ppl, burst, ie_eff, r, mos) in ROWS {
        let doc = emodel_json(&["--ie", ie, "--bpl", bpl, "--ppl", ppl, "--burst-r", burst]);
        let ctx = format!("Table B, Ie {ie} / Bpl {bpl}, Ppl {ppl} %, BurstR {burst}");
        near(&mut errs, &ctx, &doc, &["r_factor"], r);
        near(&mut errs, &ctx, &doc, &["mos"], mos);
        near(&mut errs, &ctx, &doc, &["breakdown", "ie_eff"], ie_eff);
    }
    finish(errs, "ALGORITHMS.md §7 B");
}

#[test]
fn table_c_simplified_form() {
    // Ta, Ie, Bpl, Ppl %, BurstR, R, MOS — R = 93.2 − Id − Ie,eff.
    const ROWS: [(&str, &str, &str, &str, &str, f64, f64); 7] = [
        ("0", "0", "4.3", "0", "1", 93.2, 4.409286),
        ("150", "0", "4.3", "0", "1", 89.6, 4.329077),
        ("200", "0", "4.3", "0", "1", 85.903, 4.226180),
        ("300", "0", "4.3", "0", "1", 72.503, 3.712088),
        ("400", "0", "4.3", "0", "1", 59.103, 3.053428),
        ("50", "0", "25.1", "2", "1", 84.988930, 4.197774),
        ("150", "11", "19", "2", "1.5", 70.337705, 3.612798),
    ];
    let mut errs = Vec::new();
    for (ta, ie, bpl, ppl, burst, r, mos) in ROWS {
        let doc = emodel_json(&[
            "--simplified",
            "--ie",
            ie,
            "--bpl",
            bpl,
            "--ppl",
            ppl,
            "--burst-r",
            burst,
            "--delay-ms",
            ta,
        ]);
        let ctx = format!("Table C, Ta {ta} ms, Ie {ie} / Bpl {bpl}, Ppl {ppl} %, BurstR {burst}");
        near(&mut errs, &ctx, &doc, &["r_factor"], r);
        near(&mut errs, &ctx, &doc, &["mos"], mos);
    }
    finish(errs, "ALGORITHMS.md §7 C");
}

#[test]
fn codec_pcmu_is_g711_with_plc() {
    let mut errs = Vec::new();
    // Ie 0: the clean G.107 default, Table A's first row.
    let doc = emodel_json(&["--codec", "PCMU"]);
    near(&mut errs, "--codec PCMU", &doc, &["r_factor"], 93.206208);
    near(&mut errs, "--codec PCMU", &doc, &["mos"], 4.409406);
    // With loss the Bpl shows: vqprobe's codec table gives PCMU the G.711 + Appendix I
    // PLC pair (Ie 0, Bpl 25.1, ALGORITHMS.md §2), i.e. Table B's first row at 1 %.
    let doc = emodel_json(&["--codec", "PCMU", "--ppl", "1"]);
    near(
        &mut errs,
        "--codec PCMU --ppl 1",
        &doc,
        &["r_factor"],
        89.566361,
    );
    near(
        &mut errs,
        "--codec PCMU --ppl 1",
        &doc,
        &["breakdown", "ie_eff"],
        3.639847,
    );
    finish(errs, "--codec PCMU");
}

/// Fails with a non-zero exit, something on stderr, and no panic or backtrace.
fn assert_clean_failure(args: &[&str]) -> String {
    let out = emodel(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "vqprobe emodel {}: exit {}, expected a failure; stdout: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "vqprobe emodel {}: panicked:\n{stderr}",
        args.join(" ")
    );
    assert!(
        !stderr.trim().is_empty(),
        "vqprobe emodel {}: failed without saying why on stderr",
        args.join(" ")
    );
    stderr
}

#[test]
fn unknown_codec_is_a_one_line_error() {
    let stderr = assert_clean_failure(&["--codec", "nonsense", "--format", "json"]);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "stderr of `--codec nonsense` should be one line, got:\n{stderr}"
    );
    assert!(
        stderr.contains("nonsense"),
        "the error should name the bad codec; stderr: {stderr}"
    );
}

#[test]
fn ie_without_bpl_is_refused() {
    assert_clean_failure(&["--ie", "0", "--format", "json"]);
}
