"""API token format: `<kind>_<lookup><secret>`, e.g. `lfw_3kF9a0Qx…`.

`kind` tells read-write (lfw) from read-only (lfr) at a glance; `lookup` (8 chars) finds the
row; only an HMAC of the whole token is stored and compared in constant time.
"""

import hashlib
import hmac
import secrets
import string

from django.conf import settings

_ALPHABET = string.ascii_letters + string.digits
LOOKUP_LEN = 8
SECRET_LEN = 32
KINDS = ("lfw", "lfr")


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def token_generate(*, read_only: bool) -> tuple[str, str]:
    """Return (raw token, lookup)."""
    lookup = _random(LOOKUP_LEN)
    kind = KINDS[1] if read_only else KINDS[0]
    return f"{kind}_{lookup}{_random(SECRET_LEN)}", lookup


def token_hash(raw: str) -> str:
    key = settings.LEDGERFLOW_TOKEN_HMAC_KEY.encode()
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def token_parse(raw: str) -> tuple[str, str] | None:
    """Return (kind, lookup) of a well-formed token, or None."""
    kind, sep, rest = raw.partition("_")
    if not sep or kind not in KINDS or len(rest) != LOOKUP_LEN + SECRET_LEN:
        return None
    if any(ch not in _ALPHABET for ch in rest):
        return None
    return kind, rest[:LOOKUP_LEN]


def token_matches(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(raw), stored_hash)
