"""The embedded default used by `make run`: SQLite, local files, the filesystem broker."""

import os
import secrets

from config.paths import DATA_DIR


def _local_secret_key() -> str:
    # A per-checkout random key, kept beside the SQLite file, so sessions and tokens survive
    # restarts without anyone having to configure SECRET_KEY for a laptop.
    # Written aside and linked into place: processes starting at once (web, worker, a
    # command) agree on one key and never read a half-written one.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        aside = DATA_DIR / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process was first: its key it is
        finally:
            aside.unlink()
    return path.read_text().strip()


if not (os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE")):
    os.environ["SECRET_KEY"] = _local_secret_key()
os.environ.setdefault("LOG_FORMAT", "text")
# A development machine may reach its package index through a mirror on its own network:
# environment builds trust what the index hosts resolve to here (never loopback).
os.environ.setdefault("LEDGERFLOW_SANDBOX_TRUST_INDEX_DNS", "true")

from config.broker import SCHEME as _ATOMIC_FILESYSTEM  # noqa: E402
from config.settings.base import *  # noqa: E402,F403

DEBUG = env_bool("DEBUG", False)  # noqa: F405
# The filesystem broker (config/settings/fragments/celery.py), with messages that appear whole:
# kombu's own transport lets a worker read a message file still being written, and die of it
# (config/broker.py, kombu issue #1551).
if CELERY_BROKER_URL.startswith("filesystem://"):  # noqa: F405
    CELERY_BROKER_URL = f"{_ATOMIC_FILESYSTEM}://" + \
        CELERY_BROKER_URL.removeprefix("filesystem://")  # noqa: F405
if CELERY_BROKER_URL.startswith(f"{_ATOMIC_FILESYSTEM}://"):
    # The worker looks at its queue folders every 0.1 s rather than kombu's 1 s: it also waits
    # that long whenever its pool is busy, so 1 s would cap it near two tasks a second.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"polling_interval": 0.1,
                                       **CELERY_BROKER_TRANSPORT_OPTIONS}  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (WhiteNoise warns when it is missing)
