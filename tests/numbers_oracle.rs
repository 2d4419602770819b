//! vqprobe's numbering (number plans, validation, country, type, carrier, whether the
//! national form writes a trunk prefix) against the real Python `phonenumbers`
//! package — Google's libphonenumber, the source of the data — on the same numbers: a fixed list of mobile and fixed-line numbers of 40
//! countries in E.164, national, international, RFC 3966 and `00`/`011` forms, and
//! every region's example number of every type plus perturbed (often invalid) copies.
//!
//! The oracle is `tests/support/phonenumbers_oracle.py`, run with `python3`; it must
//! be the `phonenumbers` version the compiled-in data came from
//! (`scripts/install-deps.sh` installs it).

use std::process::Command;

use serde_json::Value;
use vqprobe::engine::numbers::{builtin_carriers, builtin_plan, Numbering, Region};
use vqprobe::wire::sip::uri_user;

fn oracle() -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/phonenumbers_oracle.py"
    );
    // Another seed perturbs other digits: VQPROBE_ORACLE_SEED=7 cargo test …
    let seed = std::env::var("VQPROBE_ORACLE_SEED").unwrap_or_else(|_| "14".to_string());
    let out = Command::new("python3")
        .arg(script)
        .arg(seed)
        .output()
        .expect("run python3 (scripts/install-deps.sh installs it with phonenumbers)");
    assert!(
        out.status.success(),
        "{script} failed: {}\n(is `phonenumbers` installed? scripts/install-deps.sh)",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle prints JSON")
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

/// One case compared; `None` when vqprobe agrees with phonenumbers.
fn compare(case: &Value) -> Option<String> {
    let plan = builtin_plan();
    let carriers = builtin_carriers();
    let input = case["input"].as_str().unwrap_or_default();
    let region = case["region"].as_str().and_then(Region::parse);
    // RFC 3966 URIs: the user part, read by the SIP layer, is what gets parsed.
    let text = match uri_user(input) {
        Some(u) => u.user.into_owned(),
        None => input.to_string(),
    };
    let got = plan.parse(&text, region);
    let py_error = case["error"].as_bool().unwrap_or(false);
    let n = match (got, py_error) {
        (Err(_), true) => return None,
        (Err(e), false) => return Some(format!("vqprobe: {e}; phonenumbers: {case}")),
        (Ok(n), true) => return Some(format!("vqprobe: {}; phonenumbers: not a number", n.e164())),
        (Ok(n), false) => n,
    };
    let valid = plan.is_valid(&n);
    let country = plan.region_of(&n).map(|r| r.to_string());
    let kind = plan.number_type(&n);
    let carrier = kind
        .may_have_carrier()
        .then(|| carriers.lookup(n.e164().trim_start_matches('+')))
        .flatten();
    let trunk = plan.national_form_has_trunk_prefix(&n);
    let mine = (
        n.e164(),
        valid,
        country.as_deref(),
        kind.as_str(),
        carrier,
        trunk,
    );
    let theirs = (
        case["e164"].as_str().unwrap_or_default().to_string(),
        case["valid"].as_bool().unwrap_or_default(),
        opt_str(&case["country"]),
        case["type"].as_str().unwrap_or_default(),
        opt_str(&case["carrier"]),
        case["national_trunk"].as_bool().unwrap_or_default(),
    );
    (mine != theirs)
        .then(|| format!("{input:?} in {region:?}: vqprobe {mine:?}, phonenumbers {theirs:?}"))
}

#[test]
fn plan_and_carriers_agree_with_phonenumbers() {
    let doc = oracle();
    let version = doc["version"].as_str().unwrap_or_default();
    let plan = builtin_plan();
    assert!(
        plan.source().ends_with(&format!(" {version}")),
        "the compiled-in data is {:?} but the oracle is phonenumbers {version}: install the \
         matching version (scripts/install-deps.sh) or regenerate the data \
         (scripts/gen-numbering-data.py)",
        plan.source()
    );
    assert_eq!(builtin_carriers().version(), Some(version));
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() > 5_000, "only {} cases", cases.len());
    let diffs: Vec<String> = cases.iter().filter_map(compare).collect();
    let valid = cases.iter().filter(|c| c["valid"] == true).count();
    let with_carrier = cases.iter().filter(|c| c["carrier"].is_string()).count();
    let countries: std::collections::BTreeSet<&str> =
        cases.iter().filter_map(|c| c["country"].as_str()).collect();
    println!(
        "{} cases ({valid} valid, {with_carrier} with a carrier, {} countries): {} differ",
        cases.len(),
        countries.len(),
        diffs.len()
    );
    assert!(
        diffs.is_empty(),
        "{} of {} differ:\n{}",
        diffs.len(),
        cases.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(valid > 3_000 && with_carrier > 500 && countries.len() > 200);
}

/// The featured numbers through the whole classification (E.164 digits without `+`,
/// `00` from anywhere): the same country and MNO as phonenumbers, from 40 countries.
#[test]
fn featured_numbers_classify_like_phonenumbers() {
    let doc = oracle();
    let numbering = Numbering::builtin();
    let mut checked = std::collections::BTreeSet::new();
    for case in doc["cases"].as_array().expect("cases").iter().take(560) {
        if case["valid"] != true || case["region"].is_string() {
            continue;
        }
        let input = case["input"].as_str().unwrap_or_default();
        let info = numbering.classify(input, None);
        assert_eq!(info.e164.as_deref(), case["e164"].as_str(), "{input}");
        assert_eq!(
            info.country.map(|c| c.to_string()).as_deref(),
            case["country"].as_str(),
            "{input}"
        );
        assert_eq!(
            info.mno.as_ref().map(|m| m.name.as_str()),
            case["carrier"].as_str(),
            "{input}"
        );
        checked.insert(case["country"].as_str().unwrap_or_default().to_string());
    }
    assert!(checked.len() >= 20, "{checked:?}");
}
