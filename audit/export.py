"""The audit export format (JSON Lines), written by the server and read by audit.offline.

    {"type": "header", "format": "ledgerflow-audit-export/1", "org": ..., "key_name": ...,
     "public_key_pem": ..., "verifier_key": ..., "retired_verifier_keys": [...]}
    {"type": "event", ...one line per event, as hashed, with prev_hash and hash}
    {"type": "checkpoint", "note": "<signed C2SP checkpoint>"}   (every checkpoint, oldest first)

The header's key is informational: a verifier should check against a public key it obtained
on its own, not one taken from the file it is checking.
"""

import json

FORMAT = "ledgerflow-audit-export/1"


def export_lines(*, org_slug: str, key_name: str, public_key_pem: str, verifier_key: str,
                 records, notes, retired_verifier_keys=()):
    header = {"type": "header", "format": FORMAT, "org": org_slug, "key_name": key_name,
              "public_key_pem": public_key_pem, "verifier_key": verifier_key,
              "retired_verifier_keys": list(retired_verifier_keys)}
    yield json.dumps(header) + "\n"
    for record in records:
        yield json.dumps({"type": "event", **record}, separators=(",", ":")) + "\n"
    for note in notes:
        yield json.dumps({"type": "checkpoint", "note": note}) + "\n"
