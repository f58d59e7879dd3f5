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


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint body needs origin, size and root hash lines")
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise NoteError(f"bad size or root hash line: {exc}") from None
    if size < 0 or len(root) != 32:
        raise NoteError("bad size or root hash")
    return Checkpoint(lines[0], size, root, tuple(lines[3:]))


def open_note(note: str, name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Verify a signed checkpoint and return its content; raise NoteError otherwise."""
    body, sep, signatures = note.rpartition("\n\n")
    if not sep or not body:
        raise NoteError("not a signed note: no blank line before the signatures")
    body += "\n"
    wanted = key_id(name, public_key)
    for line in signatures.splitlines():
        dash, _, rest = line.partition(" ")
        signer, _, blob = rest.partition(" ")
        if dash != DASH or signer != name:
            continue
        raw = base64.b64decode(blob)
        if raw[:4] != wanted:
            continue
        try:
            public_key.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise NoteError("the checkpoint's signature does not verify") from None
        return _parse_body(body)
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
    signers = {line.split(" ")[1] for line in note.rpartition("\n\n")[2].splitlines()
               if line.startswith(DASH + " ") and line.count(" ") >= 2}
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
