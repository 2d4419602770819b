//! `vqprobe number` — what a NOC engineer runs to check a number — gives the same E.164
//! form, validity, country, type and carrier as Python `phonenumbers` for mobile and
//! fixed numbers of 40 countries written in E.164, international, national (with
//! `--default-country`), RFC 3966 and `00`/`011` forms; the override and ported files
//! win; bad input is a one-line error.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

fn vqprobe(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vqprobe"))
        .args(args)
        .output()
        .expect("run vqprobe")
}

fn number_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["number", "--format", "json"];
    all.extend_from_slice(args);
    let out = vqprobe(&all);
    assert!(
        out.status.success(),
        "vqprobe {}: {}",
        all.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON")
        .as_array()
        .cloned()
        .expect("an array")
}

fn oracle() -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/phonenumbers_oracle.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .output()
        .expect("python3 (scripts/install-deps.sh installs phonenumbers)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle JSON")
}

/// The featured cases (`tests/support/phonenumbers_oracle.py`): per example number,
/// seven forms of it, the last being its E.164 digits without `+` read with its own
/// country as default.
const FORMS: usize = 7;

#[test]
fn numbers_of_40_countries_match_phonenumbers() {
    let doc = oracle();
    let featured: Vec<&Value> = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .take(80 * FORMS)
        .collect();
    // Every valid number, grouped by default region: (input, what phonenumbers says).
    let mut by_region: BTreeMap<String, Vec<(&str, &Value)>> = BTreeMap::new();
    let mut own_digits_differ = Vec::new();
    for forms in featured.chunks(FORMS) {
        for (i, case) in forms.iter().enumerate() {
            // E.164 digits without "+" are read as E.164 first (SIP trunks send
            // them so), where phonenumbers' parse may take them as a national
            // number ("4915123456789" in DE is +49 4915123456789 to it): the
            // expected answer is phonenumbers' for the "+" form.
            let want = if i == FORMS - 1 { forms[0] } else { case };
            if want["valid"] != true {
                continue;
            }
            if i == FORMS - 1 && case["e164"] != want["e164"] {
                own_digits_differ.push(case["input"].as_str().unwrap_or(""));
            }
            let region = case["region"].as_str().unwrap_or("").to_string();
            let input = case["input"].as_str().unwrap_or("");
            by_region.entry(region).or_default().push((input, want));
        }
    }
    let mut checked = 0;
    let mut countries = std::collections::BTreeSet::new();
    for (region, cases) in &by_region {
        let mut args: Vec<&str> = Vec::new();
        if !region.is_empty() {
            args.extend(["--default-country", region]);
        }
        args.extend(cases.iter().map(|(input, _)| *input));
        let got = number_json(&args);
        assert_eq!(got.len(), cases.len());
        for (g, (input, want)) in got.iter().zip(cases) {
            let what = format!("{input:?} (default {region:?})");
            assert_eq!(g["e164"], want["e164"], "{what}");
            assert_eq!(g["valid"], true, "{what}");
            assert_eq!(g["country"], want["country"], "{what}");
            assert_eq!(g["type"], want["type"], "{what}");
            let mno = want["carrier"].as_str().unwrap_or("unknown");
            assert_eq!(g["mno"], mno, "{what}");
            let source = want["carrier"].is_string().then_some("libphonenumber");
            assert_eq!(g["mno_source"], serde_json::json!(source), "{what}");
            checked += 1;
            countries.insert(want["country"].as_str().unwrap_or("").to_string());
        }
    }
    println!(
        "{checked} numbers of {} countries agree; E.164 digits without + that \
         phonenumbers.parse reads as national numbers: {own_digits_differ:?}",
        countries.len()
    );
    assert!(
        checked > 400 && countries.len() >= 40,
        "{checked} {countries:?}"
    );
}

#[test]
fn override_and_ported_files_win_and_errors_are_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = dir.path().join("mno.csv");
    std::fs::write(&rows, "prefix,mno,country\n+447400,Override Co,GB\n").expect("write");
    let ported = dir.path().join("mnp.csv");
    std::fs::write(&ported, "number,mno\n+447400123456,Ported Co\n").expect("write");
    let (rows_s, ported_s) = (
        rows.to_str().expect("utf-8"),
        ported.to_str().expect("utf-8"),
    );
    let got = number_json(&[
        "--mno-prefixes",
        rows_s,
        "--ported-numbers",
        ported_s,
        "+447400123456",
        "+447400999999",
        "+447900123456",
        "sip:anonymous@anonymous.invalid",
    ]);
    let summary: Vec<(&str, &str)> = got
        .iter()
        .map(|g| {
            (
                g["mno"].as_str().unwrap_or("?"),
                g["mno_source"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Ported Co", "ported"),
            ("Override Co", "override"),
            ("Vodafone", "libphonenumber"),
            ("unknown", "-"),
        ]
    );
    assert_eq!(got[3]["anonymous"], true);

    // The table form names the data's version.
    let out = vqprobe(&["number", "--default-country", "IN", "09876543210"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "e164     +919876543210",
        "country  IN",
        "type     mobile",
        "mno      Airtel (libphonenumber: range holder)",
        "data     libphonenumber via Python phonenumbers",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }

    std::fs::write(&ported, "number,mno\n07400,Bad\n").expect("write");
    for (args, needle) in [
        (
            vec!["number", "--default-country", "ZZ", "1"],
            "calls.default_country must be an ISO 3166-1 alpha-2 country code",
        ),
        (
            vec!["number", "--ported-numbers", ported_s, "1"],
            "line 2: invalid number \"07400\"",
        ),
    ] {
        let out = vqprobe(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}
