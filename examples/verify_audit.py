#!/usr/bin/env python3
"""Verify an orgsvc audit export (GET /org/audit/export, or orgsvc audit
export): python3 verify_audit.py export.ndjson. Standard library only."""
import hashlib, json, sys

prev, n = None, 0
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    ev = json.loads(line)
    claimed = ev.pop("hash")
    canonical = json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if hashlib.sha256(canonical.encode("ascii")).hexdigest() != claimed:
        sys.exit(f"line {n}: event {ev['seq']}: its hash does not match its content")
    if prev is None and ev["seq"] == 1 and ev["prev_hash"] != "0" * 64:
        sys.exit(f"line {n}: the first event's prev_hash is not 64 zeros")
    if prev is not None and (ev["seq"] != prev[0] + 1 or ev["prev_hash"] != prev[1]):
        sys.exit(f"line {n}: event {ev['seq']} does not follow event {prev[0]}")
    prev = (ev["seq"], claimed)
print(f"ok: {n} events, chain intact" + (f", head {prev[1]}" if prev else ""))
