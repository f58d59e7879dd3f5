"""Standalone verifier for an audit export: no Django, no database.

    python -m audit.offline EXPORT.jsonl --public-key KEY.pem [--checkpoint NOTE.txt ...]
                            [--key-name NAME] [--verifier-key NAME+ID+KEY ...]

Checks every event's sequence, link and hash, and the Merkle root of each signed checkpoint
against the public key: the checkpoints in the file and, above all, those given with
--checkpoint that the organization kept elsewhere (whoever rewrites the file can drop the
checkpoints in it, not the ones you hold). Every event and checkpoint must belong to the
organization the export names. Exit 0 when intact; otherwise exit 1 and name the first bad
sequence number. After a key rotation, give the keys that signed before it with
--verifier-key (the C2SP verifier key strings the server publishes). Needs only the Python
packages `cryptography`, `rfc8785` and `orjson`.
"""

import argparse
import json
import sys
from pathlib import Path

from audit.export import FORMAT
from audit.notes import NoteError, load_public_key, open_note_by_any, parse_verifier_key
from audit.verifier import Verdict, verify_chain


def verify_export(path: Path, public_key_pem: bytes, key_name: str | None = None,
                  kept_notes: list[str] = (), verifier_keys: list[str] = ()) -> Verdict:
    public_key = load_public_key(public_key_pem)
    try:
        keys = dict(parse_verifier_key(text) for text in verifier_keys)
    except NoteError as exc:
        raise SystemExit(str(exc)) from None
    events, notes, header = [], [], None
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not JSON ({exc})") from None
            kind = item.pop("type", None)
            if kind == "header":
                header = item
            elif kind == "event":
                events.append(item)
            elif kind == "checkpoint":
                notes.append(item["note"])
    if header is None or header.get("format") != FORMAT:
        raise SystemExit(f"{path}: not a {FORMAT} file")
    keys[key_name or header["key_name"]] = public_key
    try:
        checkpoints = [open_note_by_any(note, keys) for note in [*notes, *kept_notes]]
    except NoteError as exc:
        return _failed(1, f"checkpoint rejected: {exc}")
    org = header.get("org")
    foreign = [c.origin for c in checkpoints if not c.origin.endswith(f"/{org}")]
    if foreign:
        return _failed(1, f"a checkpoint belongs to another log ({foreign[0]}), not to '{org}'")
    for event in events:
        if event.get("org") != org:
            return _failed(event.get("seq", 1), f"event of organization {event.get('org')!r} "
                                                f"in the export of '{org}'")
    if not checkpoints:
        verdict = verify_chain(events)
        if verdict.ok:
            verdict.reason = "chain intact, but no signed checkpoint to anchor it"
        return verdict
    return verify_chain(events, checkpoints)


def _failed(seq: int, reason: str) -> Verdict:
    verdict = Verdict()
    verdict.fail(seq, reason)
    return verdict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--public-key", type=Path, required=True, help="Ed25519 public key (PEM)")
    parser.add_argument("--key-name", help="signer name (default: the export header's)")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="a signed checkpoint note kept outside the export (repeatable)")
    parser.add_argument("--verifier-key", action="append", default=[],
                        help="a key that signed before a rotation, as a verifier key string "
                             "(repeatable)")
    args = parser.parse_args(argv)
    kept = [path.read_text() for path in args.checkpoint]
    verdict = verify_export(args.export, args.public_key.read_bytes(), args.key_name, kept,
                            args.verifier_key)
    print(json.dumps(verdict.as_dict()))
    if verdict.ok:
        print(f"OK: {verdict.events} events, {verdict.checkpoints} signed checkpoint(s) verified")
        return 0
    print(f"FAILED at #{verdict.first_bad_seq}: {verdict.reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
