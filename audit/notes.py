"""Signed checkpoints in the C2SP tlog-checkpoint / signed-note formats. Pure Python.

A checkpoint body is

    <origin>\\n<tree size>\\n<base64 root hash>\\n[extension lines]

followed by a blank line and one signature line `— <key name> <base64(key id || sig)>`,
where key id = SHA-256(key name || "\\n" || 0x01 || public key)[:4] (0x01: Ed25519).
Used by the server to sign and by the offline verifier to check, so it imports no Django.
"""

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = b"\x01"
DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    def extension(self, key: str) -> str | None:
        for line in self.extensions:
            name, _, value = line.partition(" ")
            if name == key:
                return value
        return None


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + raw_public_key(public_key)).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The C2SP note verifier key string: `<name>+<hex key id>+<base64(0x01 || key)>`."""
    encoded = base64.b64encode(ALG_ED25519 + raw_public_key(public_key)).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def sign(checkpoint: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    body = checkpoint.body()
    signature = private_key.sign(body.encode())
    blob = base64.b64encode(key_id(name, private_key.public_key()) + signature).decode()
    return f"{body}\n{DASH} {name} {blob}\n"


class NoteError(ValueError):
    """A checkpoint note that is malformed or whose signature does not verify."""


def _split(note: str) -> tuple[str, list[tuple[int, str]]]:
    """The signed body (with its final newline) and the signature lines, numbered as lines of
    the note. Line ends are normalised first: the body the server signs has plain LF ones, and
    a note kept on Windows or with a trailing empty line is still the same note."""
    note = note.replace("\r\n", "\n").rstrip("\n") + "\n"
    body, sep, signatures = note.rpartition("\n\n")
    if not sep or not body:
        raise NoteError("not a signed note: no blank line separates the checkpoint from its "
                        "signature lines")
    first = body.count("\n") + 3  # after the body's lines and the blank line
    return body + "\n", list(enumerate(signatures.splitlines(), first))


def _signature(number: int, line: str) -> tuple[str, bytes]:
    """(signer name, key id || signature) of signature line `number`."""
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != DASH or not parts[1]:
        raise NoteError(f"line {number} is not a signature line "
                        f"('{DASH} <key name> <base64 signature>'): {line[:80]!r}")
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except ValueError:
        raw = b""
    if len(raw) < 5:
        raise NoteError(f"line {number}: the signature by '{parts[1]}' is not base64 of a key id "
                        f"and a signature")
    return parts[1], raw


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not lines[0]:
        raise NoteError("a checkpoint needs an origin (line 1), a tree size (line 2) and a root "
                        f"hash (line 3); this one starts {body[:80]!r}")
    if not lines[1].isascii() or not lines[1].isdigit():
        raise NoteError(f"line 2 (tree size) is {lines[1][:80]!r}, not a number")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise NoteError(f"line 3 (root hash) is {lines[2][:80]!r}, not the base64 of a 32-byte "
                        "hash")
    return Checkpoint(lines[0], int(lines[1]), root, tuple(lines[3:]))


def open_note(note: str, name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Verify a signed checkpoint and return its content; raise NoteError otherwise, naming
    the line of the note that is malformed."""
    body, signatures = _split(note)
    checkpoint = _parse_body(body)
    wanted = key_id(name, public_key)
    for number, line in signatures:
        signer, raw = _signature(number, line)
        if signer != name or raw[:4] != wanted:
            continue
        try:
            public_key.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise NoteError("the checkpoint's signature does not verify") from None
        return checkpoint
    raise NoteError(f"no signature by key '{name}' on the checkpoint")


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """(name, public key) of a C2SP verifier key string, its key id checked."""
    name, _, rest = text.strip().partition("+")
    hex_id, _, encoded = rest.partition("+")
    try:
        raw = base64.b64decode(encoded, validate=True)
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError:
        raise NoteError(f"not a verifier key: {text!r}") from None
    if not name or raw[:1] != ALG_ED25519 or key_id(name, public_key).hex() != hex_id:
        raise NoteError(f"not an Ed25519 verifier key, or its id does not match: {text!r}")
    return name, public_key


def open_note_by_any(note: str, keys: dict[str, Ed25519PublicKey]) -> Checkpoint:
    """Verify a checkpoint signed by any of `keys` (name -> public key): the current key and
    those retired by rotations."""
    _, signatures = _split(note)
    signers = {_signature(number, line)[0] for number, line in signatures}
    known = [name for name in keys if name in signers]
    if not known:
        raise NoteError(f"the checkpoint is signed by {', '.join(sorted(signers)) or 'no one'}; "
                        f"known keys: {', '.join(keys)}")
    return open_note(note, known[0], keys[known[0]])


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise NoteError("the public key is not an Ed25519 key")
    return key
