"""Standalone verifier for an audit export: no Django, no database.

    python -m audit.offline EXPORT.jsonl --public-key KEY.pem [--checkpoint NOTE.txt ...]
                            [--key-name NAME] [--verifier-key NAME+ID+KEY ...]

Checks every event's sequence, link and hash, and the Merkle root of each signed checkpoint
against the public key: the checkpoints in the file and, above all, those given with
--checkpoint that the organization kept elsewhere (whoever rewrites the file can drop the
checkpoints in it, not the ones you hold; `GET /api/v1/audit/checkpoints/?format=note` gives
the latest). Every event and checkpoint must belong to the organization the export names.
Exit 0 when intact; otherwise exit 1 and name the first bad sequence number, or the file (and
line) that is not what it should be. After a key rotation, give the keys that signed before
it with --verifier-key (the C2SP verifier key strings the server publishes). Needs only the
Python packages `cryptography`, `rfc8785` and `orjson`.
"""

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

from audit.export import FORMAT
from audit.notes import (
    Checkpoint,
    NoteError,
    load_public_key,
    open_note_by_any,
    parse_verifier_key,
)
from audit.verifier import Verdict, verify_chain

NOTE_URL = "GET /api/v1/audit/checkpoints/?format=note"


class InputError(Exception):
    """A file given to the verifier is not what it should be; the message names it."""


def counted(number: int, noun: str) -> str:
    """`1 checkpoint`, `2 checkpoints`, `0 checkpoints`."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@dataclass
class Export:
    """An export file read: its events with the line each came from, and its notes with
    where each came from (`file:line`)."""

    header: dict | None = None
    events: list[dict] = field(default_factory=list)
    event_lines: list[str] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


def read_export(path: Path) -> Export:
    export = Export()
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if number > 1 and not line.strip():
                    continue  # a blank line (an editor's last newline) holds no record
                where = f"{path}:{number}"
                item = _header(line, path) if number == 1 else _record(line, where)
                _add_record(export, item, where)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file, so not an audit export") from None
    if export.header is None:
        raise InputError(f"{path}: empty, not a {FORMAT} file")
    return export


def _header(line: str, path: Path) -> dict:
    """Line 1: the header, or the file is something else (a checkpoint, another export)."""
    try:
        item = _record(line, f"{path}:1")
    except InputError:
        item = {}
    if item.get("type") != "header" or item.get("format") != FORMAT:
        raise InputError(f"{path}: not a {FORMAT} file (line 1 is not its header; "
                         "`manage.py audit_export` or GET /api/v1/audit/export/ writes one)")
    return item


def _record(line: str, where: str) -> dict:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise InputError(f"{where}: not a JSON object")
    return item


def _add_record(export: Export, item: dict, where: str) -> None:
    kind = item.pop("type", None)
    if kind == "header" and export.header is None:
        export.header = item
    elif kind == "event":
        export.events.append(item)
        export.event_lines.append(where)
    elif kind == "checkpoint":
        if not isinstance(item.get("note"), str):
            raise InputError(f"{where}: the checkpoint has no \"note\" field holding its text")
        export.notes.append((where, item["note"]))
    else:
        raise InputError(f"{where}: \"type\" is {kind!r}, not event or checkpoint (the one "
                         "header is line 1)")


def read_kept_checkpoint(path: Path) -> tuple[str, str]:
    """(source, note) of a checkpoint file kept outside the export, refused with the reason
    when it holds something else: an error page, the JSON form, nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file, so not a signed checkpoint") from None
    if not text.strip():
        raise InputError(f"{path}: empty, not a signed checkpoint (download one with "
                         f"{NOTE_URL})")
    if text.lstrip().startswith(("{", "[", "<")):
        raise InputError(f"{path}: {_what_instead(text)}, not a signed checkpoint note "
                         f"(download one with {NOTE_URL})")
    return str(path), text


def _what_instead(text: str) -> str:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return "HTML or XML" if text.lstrip().startswith("<") else "JSON that does not parse"
    if isinstance(data, dict) and "detail" in data:
        return f"the server's error answer ({data['detail']})"
    if isinstance(data, dict) and "note" in data:
        return "the JSON form of a checkpoint"
    return "JSON"


def open_checkpoints(notes: list[tuple[str, str]], keys: dict) -> list[tuple[str, Checkpoint]]:
    opened = []
    for source, note in notes:
        try:
            opened.append((source, open_note_by_any(note, keys)))
        except NoteError as exc:
            raise InputError(f"{source}: checkpoint rejected: {exc}") from None
    return opened


def verify_export(path: Path, public_key_pem: bytes, key_name: str | None = None,
                  kept_notes: list[tuple[str, str]] = (), verifier_keys: list[str] = (),
                  public_key_source: str = "--public-key") -> Verdict:
    """The verdict on the export at `path`, given the checkpoints kept elsewhere as (source,
    note). A file that is wrong rather than the trail in it (garbled, of another log, signed
    by no key given) fails without a sequence number, its reason naming the file and line."""
    try:
        keys = _verifier_keys(verifier_keys)
        public_key = _public_key(public_key_pem, public_key_source)
        export = read_export(path)
        key_name = key_name or export.header.get("key_name")
        if not key_name:
            raise InputError(f"{path}: the header names no key_name; give --key-name")
        keys[key_name] = public_key
        return _verify(export, kept_notes, keys)
    except InputError as exc:
        return _failed(None, str(exc))


def _verifier_keys(texts: list[str]) -> dict:
    try:
        return dict(parse_verifier_key(text) for text in texts)
    except NoteError as exc:
        raise InputError(f"--verifier-key: {exc}") from None


def _verify(export: Export, kept_notes: list[tuple[str, str]], keys: dict) -> Verdict:
    checkpoints = open_checkpoints([*export.notes, *kept_notes], keys)
    org = export.header.get("org")
    for source, checkpoint in checkpoints:
        if not checkpoint.origin.endswith(f"/{org}"):
            raise InputError(f"{source}: the checkpoint belongs to another log "
                             f"({checkpoint.origin}), not to '{org}'")
    for event, where in zip(export.events, export.event_lines, strict=True):
        if event.get("org") != org:
            return _failed(event.get("seq", 1), f"event of organization {event.get('org')!r} "
                                                f"in the export of '{org}' ({where})")
    verdict = verify_chain(export.events, [checkpoint for _, checkpoint in checkpoints])
    if verdict.ok and not checkpoints:
        verdict.reason = "chain intact, but no signed checkpoint to anchor it"
    if not verdict.ok:
        verdict.reason += _where(verdict, export, checkpoints)
    return verdict


def _public_key(pem: bytes, source: str):
    try:
        return load_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source}: not an Ed25519 public key in PEM form ({exc})") from None


def _where(verdict: Verdict, export: Export, checkpoints: list) -> str:
    """Which line of the export holds the first bad event, and which file holds the
    checkpoint the events contradict (the verifier knows sizes, not files)."""
    places = []
    if verdict.first_bad_seq is not None and verdict.first_bad_seq <= len(export.event_lines):
        places.append(f"event at {export.event_lines[verdict.first_bad_seq - 1]}")
    sizes = {int(n) for n in re.findall(r"checkpoint (?:of size|covers) (\d+)", verdict.reason)}
    places += [f"checkpoint from {source}" for source, checkpoint in checkpoints
               if checkpoint.size in sizes]
    return f" [{'; '.join(places)}]" if places else ""


def _failed(seq: int | None, reason: str) -> Verdict:
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
    try:
        pem = args.public_key.read_bytes()
        kept = [read_kept_checkpoint(path) for path in args.checkpoint]
    except OSError as exc:
        verdict = _failed(None, f"{args.public_key}: cannot read it ({exc.strerror})")
    except InputError as exc:
        verdict = _failed(None, str(exc))
    else:
        verdict = verify_export(args.export, pem, args.key_name, kept, args.verifier_key,
                                public_key_source=str(args.public_key))
        if "checkpoint rejected: no signature by key" in verdict.reason:
            verdict.reason += f" (does {args.public_key} hold the key that signed it?)"
    return _report(verdict)


def _report(verdict: Verdict) -> int:
    print(json.dumps(verdict.as_dict()))
    if verdict.ok:
        print(f"OK: {counted(verdict.events, 'event')}, "
              f"{counted(verdict.checkpoints, 'signed checkpoint')} verified")
        return 0
    where = f" at #{verdict.first_bad_seq}" if verdict.first_bad_seq is not None else ""
    print(f"FAILED{where}: {verdict.reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
