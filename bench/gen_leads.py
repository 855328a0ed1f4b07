#!/usr/bin/env python3
"""Writes N leads in leads_sample.csv's column set, with the sample's mix of phone
formats, to stdout. Deterministic (seeded). Usage: gen_leads.py N > leads.csv"""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rng = random.Random(42)
areas = [212, 213, 305, 312, 415, 469, 617, 702, 713, 808, 907, 972, 203, 208, 303, 475, 602, 813, 970, 214]
formats = [
    lambda a, e, l: f"{a}{e}{l:04d}",
    lambda a, e, l: f"1{a}{e}{l:04d}",
    lambda a, e, l: f"{a}-{e}-{l:04d}",
    lambda a, e, l: f"({a}) {e}-{l:04d}",
    lambda a, e, l: f"{a}.{e}.{l:04d}",
    lambda a, e, l: f"+1{a}{e}{l:04d}",
    lambda a, e, l: f"+1 {a} {e} {l:04d}",
]
partners = ["Acme Solar", "Physics Wallah", "Leverage Edu", '"Tampa Realty, LLC"']
out = sys.stdout
out.write("lead_uuid,number,whatsapp_number,name,email,partner,call_status\n")
for i in range(n):
    area = areas[i % len(areas)]
    k = i // len(areas)
    exchange = 200 + (k // 10_000) % 790
    if exchange % 100 == 11 or exchange == 555:
        exchange += 1
    line = k % 10_000
    phone = rng.choice(formats)(area, exchange, line)
    wa = phone if i % 2 else ""
    out.write(f",{phone},{wa},Lead {i},lead{i}@example.com,{partners[i % 4]},pending\n")
