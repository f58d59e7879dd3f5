"""The Ed25519 key that signs checkpoints (LEDGERFLOW_SIGNING_KEY_FILE, a PKCS#8 PEM file).

Outside production a missing key file is created on first use, so `make run` and the tests
sign without setup; production settings turn that off and refuse to sign without a key.
"""

import functools
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit.notes import parse_verifier_key, verifier_key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first; use theirs
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


@functools.cache
def _load(path: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{path} does not hold an Ed25519 private key")
    return key


def signing_key() -> Ed25519PrivateKey:
    path = Path(settings.LEDGERFLOW_SIGNING_KEY_FILE)
    if not path.exists():
        if not settings.LEDGERFLOW_SIGNING_KEY_AUTOCREATE:
            raise ImproperlyConfigured(f"LEDGERFLOW_SIGNING_KEY_FILE {path} does not exist")
        _create(path)
    return _load(str(path))


def key_name() -> str:
    return settings.LEDGERFLOW_AUDIT_KEY_NAME


def public_key_pem() -> str:
    return signing_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_verifier_key() -> str:
    return verifier_key(key_name(), signing_key().public_key())


def log_origin(org) -> str:
    return f"{settings.LEDGERFLOW_AUDIT_ORIGIN}/{org.slug}"


def retired_verifier_keys() -> list[str]:
    """Keys that signed before a rotation (LEDGERFLOW_AUDIT_RETIRED_KEYS, verifier key
    strings): their checkpoints keep verifying."""
    return list(settings.LEDGERFLOW_AUDIT_RETIRED_KEYS)


def verification_keys() -> dict:
    """name -> public key: the current key and every retired one."""
    keys = dict(parse_verifier_key(text) for text in retired_verifier_keys())
    keys[key_name()] = signing_key().public_key()
    return keys
