#!/usr/bin/env python3
"""Generate data/npa_states.txt (NANP area code -> state/province/country).

Source: libphonenumber (Apache License 2.0, Copyright The Libphonenumber
Authors) as carried by the Python "phonenumbers" package:
  * resources/geocoding/en/1.txt  -> phonenumbers.geodata.GEOCODE_DATA
    (keys "1NPA..." -> {"en": description}) for the United States and Canada;
  * resources/PhoneNumberMetadata.xml -> per-region <leadingDigits> for the
    other NANP regions (US territories and Caribbean/Atlantic countries),
    with English names from phonenumbers.geodata.locale.

Usage:
  pip install --target /tmp/pn phonenumbers==9.0.43
  PYTHONPATH=/tmp/pn python3 data/gen_npa_states.py > data/npa_states.txt

The script fails (non-zero exit) on any description it cannot map, any NPA
whose longer prefixes disagree on the state, or any NPA that libphonenumber
considers a valid fixed-line/mobile area code but that is missing here.
"""

import re
import sys

import phonenumbers as pn
from phonenumbers.geocoder import _region_display_name
from phonenumbers.geodata import GEOCODE_DATA
from phonenumbers.phonenumberutil import PhoneMetadata, region_codes_for_country_code

US = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas",
    "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming",
}
CA = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories", "NU": "Nunavut",
    "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec", "SK": "Saskatchewan", "YT": "Yukon",
}
# US territories that are NANP regions of their own: postal code == ISO 3166-1 code.
US_TERRITORIES = {"PR", "VI", "GU", "MP", "AS"}
NAME_TO_CODE = {name: code for code, name in {**US, **CA}.items()}
# Spellings used by the upstream geocoding file.
NAME_TO_CODE.update({"Washington State": "WA", "Washington D.C.": "DC", "British Colombia": "BC"})
CODE_NAMES = {**US, **CA}


def code_for(desc):
    """Code for an upstream description ("New Jersey", "Jersey City, NJ", "Nova Scotia/Prince Edward Island")."""
    state = desc.rsplit(",", 1)[-1].strip()
    if state in CODE_NAMES:
        return state
    parts = state.split("/")
    if all(p in NAME_TO_CODE for p in parts):
        return "/".join(NAME_TO_CODE[p] for p in parts)
    return None


def name_for(code):
    return "/".join(CODE_NAMES[c] for c in code.split("/"))


def main():
    entries = {}  # npa -> (code, name, how)
    # 1. Other NANP regions (territories, Caribbean/Atlantic countries) from region metadata.
    for region in region_codes_for_country_code(1):
        if region in ("US", "CA"):
            continue
        pattern = PhoneMetadata.metadata_for_region(region).leading_digits
        npas = [str(n) for n in range(200, 1000) if re.fullmatch(pattern, str(n))]
        if not npas:
            sys.exit(f"region {region}: no 3-digit NPA in leading digits {pattern!r}")
        code = region if region in US_TERRITORIES else "C-" + region
        for npa in npas:
            entries[npa] = (code, _region_display_name(region, "en"), "region")

    # 2. United States and Canada from the English geocoding data.
    longer = {}
    for prefix, names in GEOCODE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4 or prefix[1:4] in entries:
            continue
        desc = names["en"]
        code = code_for(desc)
        if len(prefix) == 4:
            if code is None:
                sys.exit(f"{prefix}: cannot map {desc!r}")
            entries[prefix[1:]] = (code, name_for(code), "npa")
        else:
            longer.setdefault(prefix[1:4], []).append((prefix, desc, code))
    derived = []
    for npa, rows in sorted(longer.items()):
        if npa in entries:
            continue
        codes = {code for _, _, code in rows}
        if len(codes) != 1 or None in codes:
            sys.exit(f"{npa}: longer prefixes disagree or are unmappable: {rows[:10]}")
        code = codes.pop()
        entries[npa] = (code, name_for(code), "derived")
        derived.append(f"{npa} ({len(rows)} prefixes)")

    # 3. Checks: plausible NPAs; complete against libphonenumber's own validity metadata.
    for npa in entries:
        if not re.fullmatch(r"[2-9][0-8]\d", npa) or npa[1] == npa[2]:
            sys.exit(f"{npa}: not a geographic NPA shape")
    valid = set()
    for npa in range(200, 1000):
        for nxx in range(200, 1000):
            num = pn.parse(f"+1{npa}{nxx}4567")
            if pn.is_valid_number(num) and pn.number_type(num) in (
                pn.PhoneNumberType.FIXED_LINE,
                pn.PhoneNumberType.MOBILE,
                pn.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            ):
                valid.add(str(npa))
                break
    if valid != set(entries):
        sys.exit(f"mismatch with metadata: missing {sorted(valid - set(entries))}, extra {sorted(set(entries) - valid)}")

    kinds = {"US": 0, "CA": 0, "US territory": 0, "other country": 0, "shared CA": 0}
    for code, _, _ in entries.values():
        if code in US:
            kinds["US"] += 1
        elif code in CA:
            kinds["CA"] += 1
        elif "/" in code:
            kinds["shared CA"] += 1
        elif code in US_TERRITORIES:
            kinds["US territory"] += 1
        else:
            kinds["other country"] += 1

    out = sys.stdout
    out.write(
        f"""# NANP area code (NPA) -> state / province / country, one per line: NPA|CODE|Name
#
# Source: libphonenumber resources/geocoding/en/1.txt (US and Canada) and
# resources/PhoneNumberMetadata.xml (leadingDigits of the other NANP regions),
# as carried by the Python "phonenumbers" package {pn.__version__}
# (phonenumbers/geodata, phonenumbers/data, phonenumbers/geodata/locale.py).
# Copyright (C) 2011-2026 The Libphonenumber Authors. Apache License 2.0.
# Generated by data/gen_npa_states.py; do not edit by hand, re-run:
#   pip install --target /tmp/pn phonenumbers=={pn.__version__}
#   PYTHONPATH=/tmp/pn python3 data/gen_npa_states.py > data/npa_states.txt
#
# CODE scheme:
#   XX     two-letter USPS code: US state, DC, US territory (PR VI GU MP AS), or
#          Canada Post province/territory code (ON QC BC AB MB SK NS NB NL PE YT NT NU)
#   XX/YY  an NPA that serves several provinces as a whole (902/782 NS/PE, 867 NT/NU/YT)
#   C-XX   another NANP country or territory, by ISO 3166-1 alpha-2 (C-JM Jamaica,
#          C-KY Cayman Islands) so it never collides with a state (KY Kentucky)
# Non-geographic NPAs (toll-free 8YY, 5YY, 600, 700, 900, N11, ...) are absent.
#
# US/CA entries: the 4-digit "1NPA" line of geocoding/en/1.txt; {len(derived)} NPAs without one
# were derived because all their longer prefixes name the same state:
#   {", ".join(derived)}
# Other NANP regions: every 3-digit NPA matching the region's leadingDigits.
# Checked: the NPAs here are exactly those with valid fixed-line/mobile numbers per
# libphonenumber metadata.
# Counts: {len(entries)} NPAs; {", ".join(f"{k} {v}" for k, v in kinds.items())}.
"""
    )
    for npa in sorted(entries):
        code, name, _ = entries[npa]
        out.write(f"{npa}|{code}|{name}\n")


if __name__ == "__main__":
    main()
