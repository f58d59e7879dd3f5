"""Guessing credentials and flooding the API (tenancy/throttling.py, docs/security.md).

A failed login or a guessed token counts against the caller's address and, when it names one,
the account; LEDGERFLOW_AUTH_FAILURE_LIMIT failures within LEDGERFLOW_AUTH_LOCKOUT_SECONDS
lock them out for that long (django-axes keeps the count; its admin lists attempts and
lockouts, and deleting an attempt there lifts its lockout). Every authenticated API and MLflow
call counts against its caller's LEDGERFLOW_API_RATE per minute (0: no limit).
"""

from datetime import timedelta

from config.env import env_int, env_list, env_str
from config.paths import DATA_DIR

# The TLS proxy (or load balancer) in front, by address or network: a request from one of them
# is judged by the client address it puts in X-Forwarded-For (config/addresses.py). Without it
# every client behind the proxy shares the proxy's address, and one guesser locks all out.
LEDGERFLOW_TRUSTED_PROXIES = env_list("LEDGERFLOW_TRUSTED_PROXIES", [])
LEDGERFLOW_AUTH_FAILURE_LIMIT = env_int("LEDGERFLOW_AUTH_FAILURE_LIMIT", 10)
LEDGERFLOW_AUTH_LOCKOUT_SECONDS = env_int("LEDGERFLOW_AUTH_LOCKOUT_SECONDS", 15 * 60)
# A busy training loop logs a few hundred calls a second at most; a runaway script or a flood
# is what this stops.
LEDGERFLOW_API_RATE = env_int("LEDGERFLOW_API_RATE", 36_000)

AUTHENTICATION_BACKENDS = [
    "tenancy.throttling.LockoutBackend",  # refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = LEDGERFLOW_AUTH_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LEDGERFLOW_AUTH_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = "tenancy.throttling.lockout_parameters"
AXES_USERNAME_CALLABLE = "tenancy.throttling.account_of"
AXES_CLIENT_IP_CALLABLE = "tenancy.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "tenancy.throttling.lockout_response"
AXES_RESET_ON_SUCCESS = True  # a successful login forgets that account's failures
AXES_SENSITIVE_PARAMETERS = ["password", "token"]

# Counters and lockout marks are shared by every process: Redis when the deployment has it
# (LEDGERFLOW_CACHE_URL, or the Celery broker's Redis), files under the data directory in the
# embedded default.
_CACHE_URL = env_str("LEDGERFLOW_CACHE_URL", "")
if not _CACHE_URL and env_str("CELERY_BROKER_URL", "").startswith(("redis://", "rediss://")):
    _CACHE_URL = env_str("CELERY_BROKER_URL", "")
if _CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": _CACHE_URL, "KEY_PREFIX": "ledgerflow"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATA_DIR / "cache")}}
