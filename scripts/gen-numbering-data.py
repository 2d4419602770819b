#!/usr/bin/env python3
"""Generates vqprobe's numbering data from Google's libphonenumber, as shipped by its
Python port `phonenumbers` (PyPI, Apache-2.0):

  crates/vqprobe-engine/data/numbering-plan.json  number plans of every country and
      non-geographic calling code: international and national prefixes, possible
      lengths, the validation pattern of each number type and which national formats
      write the trunk prefix (what parsing, validation, region and type detection
      need; the rest of the formatting rules is left out).
  crates/vqprobe-engine/data/carriers.tsv  the English carrier names of the mobile
      prefixes (libphonenumber's `carrier` data), one `prefix<TAB>name` per line.

Both files record the `phonenumbers` version they came from. Re-running this script
with a newer `phonenumbers` installed (`pip install -U phonenumbers`) is how the tables
are refreshed; `cargo test` then checks vqprobe against that same package.

Usage: python3 scripts/gen-numbering-data.py [--check]
  --check  exit 1 if the committed files differ from what the installed package gives.
"""
import json
import os
import re
import sys

import phonenumbers as pn
from phonenumbers.carrierdata import CARRIER_DATA

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "vqprobe-engine", "data")

# Number types in the order libphonenumber's number-type test walks them.
DESCS = [
    ("general", "general_desc"),
    ("premium_rate", "premium_rate"),
    ("toll_free", "toll_free"),
    ("shared_cost", "shared_cost"),
    ("voip", "voip"),
    ("personal_number", "personal_number"),
    ("pager", "pager"),
    ("uan", "uan"),
    ("voicemail", "voicemail"),
    ("fixed_line", "fixed_line"),
    ("mobile", "mobile"),
]


def rust_replacement(rule):
    """Python's `\\1` group references as the regex crate writes them (`${1}`)."""
    if rule is None:
        return None
    if "$" in rule:
        raise SystemExit("transform rule %r contains '$'" % rule)
    return re.sub(r"\\(\d)", r"${\1}", rule)


def desc(d):
    if d is None or not d.national_number_pattern:
        # libphonenumber never matches a description without a pattern.
        return None
    return {
        "pattern": d.national_number_pattern,
        "lengths": [n for n in d.possible_length],
        "local_lengths": [n for n in d.possible_length_local_only],
    }


def writes_trunk_prefix(rule):
    """Whether a national formatting rule (`0\\1`, `8 (\\1)`, not `(\\1)`) writes digits
    before the first group: the trunk prefix (Gabon writes a 0 it has no national
    prefix for)."""
    return bool(rule) and any(c.isdigit() for c in rule.replace("\\1", ""))


def territory(m):
    out = {
        "id": m.id,
        "country_code": m.country_code,
        "international_prefix": m.international_prefix,
        "national_prefix": m.national_prefix or None,
        "national_prefix_for_parsing": m.national_prefix_for_parsing or None,
        "national_prefix_transform_rule": rust_replacement(m.national_prefix_transform_rule or None),
        "leading_digits": m.leading_digits,
        "same_mobile_and_fixed_line_pattern": bool(m.same_mobile_and_fixed_line_pattern),
    }
    for key, attr in DESCS:
        out[key] = desc(getattr(m, attr))
    # National formats, reduced to which of them write the trunk prefix: a number
    # signalled without a trunk prefix its national form would have is more likely
    # E.164 without "+" (see Numbering::read).
    out["national_formats"] = [
        {
            "pattern": f.pattern,
            "leading_digits": f.leading_digits_pattern[-1] if f.leading_digits_pattern else None,
            "trunk_prefix": writes_trunk_prefix(f.national_prefix_formatting_rule),
        }
        for f in m.number_format
    ]
    if out["general"] is None:
        raise SystemExit("%s has no general description" % m.id)
    return out


def plan_text(version):
    territories = []
    for cc in sorted(pn.COUNTRY_CODE_TO_REGION_CODE):
        for region in pn.COUNTRY_CODE_TO_REGION_CODE[cc]:
            if region == pn.REGION_CODE_FOR_NON_GEO_ENTITY:
                m = pn.PhoneMetadata.metadata_for_nongeo_region(cc)
            else:
                m = pn.PhoneMetadata.metadata_for_region(region)
            if m is None:
                raise SystemExit("no metadata for %s (+%d)" % (region, cc))
            territories.append(territory(m))
    codes = {str(cc): list(r) for cc, r in sorted(pn.COUNTRY_CODE_TO_REGION_CODE.items())}
    # One territory per line: a refresh shows as a diff of the territories that changed.
    lines = ['{"source": %s,' % json.dumps("libphonenumber via Python phonenumbers " + version),
             ' "country_codes": %s,' % json.dumps(codes, separators=(",", ":")),
             ' "territories": [']
    body = [json.dumps(t, separators=(",", ":"), ensure_ascii=False) for t in territories]
    lines.append(",\n".join(body))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def carriers_text(version):
    rows = []
    for prefix, names in sorted(CARRIER_DATA.items()):
        # English names only (the contract): a prefix named in other languages alone
        # falls through to a shorter one, as `carrier.name_for_number(n, "en")` does.
        if "en" not in names:
            continue
        name = names["en"]
        if "\t" in name or "\n" in name:
            raise SystemExit("carrier name %r has a tab or line break" % name)
        rows.append("%s\t%s" % (prefix, name))
    head = [
        "# Mobile carrier prefixes: E.164 digits (country code included, no +) and the",
        "# English name of the carrier the range was allocated to.",
        "# Source: libphonenumber carrier data via Python phonenumbers %s (Apache-2.0)." % version,
        "# Generated by scripts/gen-numbering-data.py; do not edit, re-run it.",
        "# phonenumbers %s" % version,
    ]
    return "\n".join(head + rows) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    version = pn.__version__
    files = {
        "numbering-plan.json": plan_text(version),
        "carriers.tsv": carriers_text(version),
    }
    stale = []
    for name, text in files.items():
        path = os.path.join(OUT, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        else:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print("%s: %d bytes (phonenumbers %s)" % (os.path.relpath(path, ROOT), len(text.encode()), version))
    if stale:
        print("out of date with phonenumbers %s: %s" % (version, ", ".join(stale)), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
