"""The embedded default used by `make run`: SQLite, local files, the filesystem broker."""

import os
import secrets

from config.paths import DATA_DIR


def _local_secret_key() -> str:
    # A per-checkout random key, kept beside the SQLite file, so sessions and tokens survive
    # restarts without anyone having to configure SECRET_KEY for a laptop.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


if not (os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE")):
    os.environ["SECRET_KEY"] = _local_secret_key()
os.environ.setdefault("LOG_FORMAT", "text")
# A development machine may reach its package index through a mirror on its own network:
# environment builds trust what the index hosts resolve to here (never loopback).
os.environ.setdefault("LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS", "true")

from config.settings.base import *  # noqa: E402,F403

DEBUG = env_bool("DEBUG", False)  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (WhiteNoise warns when it is missing)
