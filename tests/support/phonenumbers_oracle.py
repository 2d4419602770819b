#!/usr/bin/env python3
"""The oracle of tests/numbers_oracle.rs: Python `phonenumbers` (Google's libphonenumber)
answers for a deterministic set of numbers, printed as one JSON document.

{"version": "9.0.43",
 "cases": [{"input", "region" (default region or null), "error": true} |
           {"input", "region", "e164", "valid", "country", "type", "carrier",
            "national_trunk"}, ...]}

Cases:
  * a fixed list of mobile and fixed-line numbers of the countries named by the issue
    (and more), each written in E.164, national, international, 00/011-prefixed and
    RFC 3966 forms;
  * every region's example number of every type, in E.164 and national form, and
    perturbed copies (random last digits, one digit more or less) that are often
    invalid, from a fixed seed.
"""
import json
import random
import sys

import phonenumbers as pn
from phonenumbers import PhoneNumberFormat as F
from phonenumbers import PhoneNumberType as T
from phonenumbers import carrier

TYPES = [T.FIXED_LINE, T.MOBILE, T.TOLL_FREE, T.PREMIUM_RATE, T.SHARED_COST, T.VOIP,
         T.PERSONAL_NUMBER, T.PAGER, T.UAN, T.VOICEMAIL]
TYPE_NAME = {v: k.lower() for k, v in vars(T).items() if isinstance(v, int) and k.isupper()}

# Countries whose calls came out "unknown" before (issue 14) and others, by region.
FEATURED = ["IN", "BR", "FR", "CN", "ID", "AE", "GB", "DE", "AT", "CH", "IT", "IE", "NG",
            "ZA", "KE", "US", "CA", "MX", "ES", "JP", "AU", "RU", "KZ", "TR", "EG", "PK",
            "BD", "PH", "SA", "AR", "NL", "PL", "VN", "TH", "MY", "KR", "GH", "MA", "CO",
            "SE"]


def answer(text, region):
    try:
        n = pn.parse(text, region)
    except pn.NumberParseException:
        return {"input": text, "region": region, "error": True}
    country = pn.region_code_for_number(n)
    return {
        "input": text,
        "region": region,
        "e164": pn.format_number(n, F.E164),
        "valid": pn.is_valid_number(n),
        "country": country if country and country != "001" else None,
        "type": TYPE_NAME[pn.number_type(n)],
        "carrier": carrier.name_for_number(n, "en") or None,
        # Whether the national format writes digits before the national significant
        # number: the trunk prefix.
        "national_trunk": pn.normalize_digits_only(pn.format_number(n, F.NATIONAL))
        != pn.national_significant_number(n),
    }


def featured():
    out = []
    idd_from = {"US": "011", "CA": "011"}
    for r in FEATURED:
        for t in (T.MOBILE, T.FIXED_LINE):
            ex = pn.example_number_for_type(r, t)
            if ex is None:
                continue
            e164 = pn.format_number(ex, F.E164)
            digits = e164[1:]
            out.append(answer(e164, None))
            out.append(answer(pn.format_number(ex, F.INTERNATIONAL), None))
            out.append(answer(pn.format_number(ex, F.NATIONAL), r))
            out.append(answer(pn.format_number(ex, F.RFC3966), None))
            # Dialled from another country, with that country's international prefix.
            other = "US" if r != "US" else "GB"
            out.append(answer(idd_from.get(other, "00") + digits, other))
            out.append(answer("00" + digits, "DE" if r != "DE" else "FR"))
            # E.164 digits without "+", read with the number's own country as default.
            out.append(answer(digits, r))
    return out


def sweep(rng):
    out = []
    for r in sorted(pn.SUPPORTED_REGIONS):
        for t in TYPES:
            ex = pn.example_number_for_type(r, t)
            if ex is None:
                continue
            nsn = pn.national_significant_number(ex)
            cc = ex.country_code
            out.append(answer("+%d%s" % (cc, nsn), None))
            out.append(answer(pn.format_number(ex, F.NATIONAL), r))
            for _ in range(2):
                k = min(4, len(nsn) - 1)
                v = nsn[:-k] + "".join(rng.choice("0123456789") for _ in range(k))
                out.append(answer("+%d%s" % (cc, v), None))
                shorter_or_longer = v[:-1] if rng.random() < 0.5 else v + rng.choice("0123456789")
                out.append(answer("+%d%s" % (cc, shorter_or_longer), None))
                out.append(answer("0" + v, r))
    for cc in sorted(pn.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        m = pn.PhoneMetadata.metadata_for_nongeo_region(cc)
        for desc in (m.toll_free, m.premium_rate, m.shared_cost, m.voip, m.uan, m.mobile):
            if desc is not None and desc.example_number:
                out.append(answer("+%d%s" % (cc, desc.example_number), None))
    # Junk and edge cases.
    for text, region in [("", "GB"), ("anonymous", "GB"), ("12", "GB"), ("+12", None),
                         ("0", "DE"), ("+0123456", None), ("+999123456", None),
                         ("00", "DE"), ("0049", "DE"), ("0049 30 1", "DE"),
                         ("1" * 20, "US"), ("+" + "4" * 20, None), ("(+44) 20 7946 0958", None),
                         ("+44 (0)20 7946 0958", None), ("++44 20 7946 0958", None),
                         ("0800 123 4567", None), ("4930123456", "DE")]:
        out.append(answer(text, region))
    return out


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 14
    rng = random.Random(seed)
    json.dump({"version": pn.__version__, "cases": featured() + sweep(rng)}, sys.stdout)


if __name__ == "__main__":
    main()
