"""Settings shared by every environment; each topic reads its own variables here or in a fragment."""

import importlib.util
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_db, env_int, env_list, env_secret, env_str
from config.paths import BASE_DIR, DATA_DIR

SECRET_KEY = env_secret("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_guid",
    "axes",  # failed logins and lockouts (config/settings/fragments/throttling.py)
    "tenancy",
    "audit",
    "tracking",
    "projects",
    "models_registry",
    "reports",
    "config.jobs",
]

MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",
    "config.health.probe_middleware",  # /health, /ready and /metrics, whatever the Host
    "config.logging.request_log_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.limits.RequestBodyLimitMiddleware",  # 413 past a body limit, before it is read
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.scope.scope_middleware",  # a request's database scope ends with it (PG RLS)
    "tenancy.middleware.loopback_sessions_middleware",  # demo accounts: this machine only
    "tenancy.middleware.session_lifetime_middleware",  # idle timeout, absolute lifetime
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy (fragments/csp.py)
    "axes.middleware.AxesMiddleware",  # a locked-out login answers 429 (fragments/throttling.py)
]

# A browser session ends after this long without a request, and this long after its login
# whatever happens (tenancy.middleware); its cookie is HttpOnly, SameSite=Lax (and Secure in
# production settings).
LEDGERFLOW_SESSION_IDLE_SECONDS = env_int("LEDGERFLOW_SESSION_IDLE_SECONDS", 30 * 60)
LEDGERFLOW_SESSION_MAX_SECONDS = env_int("LEDGERFLOW_SESSION_MAX_SECONDS", 8 * 3600)
SESSION_COOKIE_AGE = LEDGERFLOW_SESSION_MAX_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Django's defaults, pinned: pages are never framed, send no Referer to other sites and are
# never sniffed into another type (asserted on every page by tests/ui/test_csp.py).
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenancy.context_processors.organization",
                "tenancy.oidc.sso_context",  # the login page's single sign-on button (fragments/oidc.py)
            ],
        },
    },
]

DATABASES = {"default": env_db("DATABASE_URL", f"sqlite:///{DATA_DIR / 'ledgerflow.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share one SQLite file: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock at BEGIN (no deadlock on lock upgrade) and the
    # timeout makes a second writer wait instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    # A health check is a SELECT 1 before every request's first query: a round trip per API
    # call, 4 % of a search. Without it a connection that died (database restarted) fails
    # one request, which the mlflow client retries, and is replaced on the next.
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS",
                                    env_bool("LEDGERFLOW_DB_HEALTH_CHECKS", False))
    # The lookups every API call makes and log-batch's insert are prepared statements on each
    # kept connection (config/rows.py): PostgreSQL plans the token's join in 0.18 ms and runs
    # it in 0.03. Django prepares nothing by default, for poolers' sake; behind PgBouncer
    # older than 1.21 in transaction mode, set LEDGERFLOW_DB_PREPARE=false.
    if env_bool("LEDGERFLOW_DB_PREPARE", True):  # only what asks (config.rows.PreparingCursor)
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 10**9)
# The tables' owner, whom `manage.py migrate` alone connects as (tenancy/dbroles.py): the
# service's own role (DATABASE_URL) reads and writes rows, and cannot switch row-level security
# off. Its user, password, host and port; the database is DATABASE_URL's.
LEDGERFLOW_DATABASE_OWNER = None
if env_secret("DATABASE_OWNER_URL", ""):
    _owner = env_db("DATABASE_OWNER_URL", "")
    if _owner["ENGINE"] != DATABASES["default"]["ENGINE"] or \
            DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        raise ImproperlyConfigured("DATABASE_OWNER_URL needs a PostgreSQL DATABASE_URL: the "
                                   "owner is another role of the same database")
    LEDGERFLOW_DATABASE_OWNER = {key: _owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT")}
# Services open their own atomic blocks (durable=True); see STYLE.md section 4.
DATABASES["default"]["ATOMIC_REQUESTS"] = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenancy.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Static files belong to a release (collected into the image), not to the data directory.
STATIC_ROOT = Path(env_str("LEDGERFLOW_STATIC_ROOT", str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the apps' folders, so `collectstatic` is not a setup step.
WHITENOISE_USE_FINDERS = True
# Plotly's browser bundle, as the plotly package ships it (no CDN: the machines may have no
# internet): /static/vendor/plotly/plotly.min.js.
STATICFILES_DIRS = [("vendor/plotly", str(Path(importlib.util.find_spec("plotly").origin)
                                         .parent / "package_data"))]

LEDGERFLOW_ARTIFACT_ROOT = Path(env_str("LEDGERFLOW_ARTIFACT_ROOT", str(DATA_DIR / "artifacts")))
# Run and model artifacts (tracking/artifacts.py), each organization under "<org id>/".
# Swap this entry for django-storages' S3 backend to keep them in object storage.
STORAGES["artifacts"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(LEDGERFLOW_ARTIFACT_ROOT), "allow_overwrite": True},
}
# Model packages (models_registry/packaging.py): immutable copies of registered versions.
LEDGERFLOW_REGISTRY_ROOT = Path(env_str("LEDGERFLOW_REGISTRY_ROOT", str(DATA_DIR / "registry")))
STORAGES["registry"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(LEDGERFLOW_REGISTRY_ROOT)},
}
# Packaging: how long an attempt may go without renewing its lease before the sweeper hands
# the version on, how many attempts an interrupted packaging gets, and how long verifying a
# model (loading it, scoring its input example) may take.
LEDGERFLOW_PACKAGING_LEASE_SECONDS = env_int("LEDGERFLOW_PACKAGING_LEASE_SECONDS", 90)
LEDGERFLOW_PACKAGING_MAX_ATTEMPTS = env_int("LEDGERFLOW_PACKAGING_MAX_ATTEMPTS", 4)
LEDGERFLOW_PACKAGING_VERIFY_TIMEOUT = env_int("LEDGERFLOW_PACKAGING_VERIFY_TIMEOUT", 300)
# Scoring (models_registry/scorers.py): every model is loaded only by a sandboxed scorer
# process, in its own environment (LEDGERFLOW_MODEL_ENV_MANAGER: auto, virtualenv, conda,
# local; see models_registry/environments.py). Per service process at most
# LEDGERFLOW_SCORERS_PER_PROCESS scorers run (least recently used stopped first; also when
# idle this long, or when the machine has less memory available than the minimum), each
# within its memory, CPU-time and process limits; a request waits at most
# LEDGERFLOW_SCORING_TIMEOUT seconds, a scorer's start (loading) LEDGERFLOW_SCORER_START_TIMEOUT.
LEDGERFLOW_MODEL_ENV_MANAGER = env_str("LEDGERFLOW_MODEL_ENV_MANAGER", "auto")
LEDGERFLOW_SCORERS_PER_PROCESS = env_int("LEDGERFLOW_SCORERS_PER_PROCESS",
                                         env_int("LEDGERFLOW_SCORING_CACHE_SIZE", 4))
LEDGERFLOW_SCORER_IDLE_SECONDS = env_int("LEDGERFLOW_SCORER_IDLE_SECONDS", 900)
LEDGERFLOW_SCORER_MIN_FREE_MB = env_int("LEDGERFLOW_SCORER_MIN_FREE_MB", 512)
LEDGERFLOW_SCORER_MEMORY_MB = env_int("LEDGERFLOW_SCORER_MEMORY_MB", 2048)
LEDGERFLOW_SCORER_CPU_SECONDS = env_int("LEDGERFLOW_SCORER_CPU_SECONDS", 6 * 3600)
LEDGERFLOW_SCORER_PROCESSES = env_int("LEDGERFLOW_SCORER_PROCESSES", 64)
LEDGERFLOW_SCORER_START_TIMEOUT = env_int("LEDGERFLOW_SCORER_START_TIMEOUT", 300)
LEDGERFLOW_SCORING_TIMEOUT = env_int("LEDGERFLOW_SCORING_TIMEOUT", 60)
LEDGERFLOW_MODEL_CACHE_DIR = Path(env_str("LEDGERFLOW_MODEL_CACHE_DIR", str(DATA_DIR / "model-cache")))
LEDGERFLOW_SCORING_MAX_ROWS = env_int("LEDGERFLOW_SCORING_MAX_ROWS", 10000)

# Projects (projects/): how large an uploaded or cloned project may unpack, and whether Git
# sources may be local paths on the worker (tests and single-machine setups).
LEDGERFLOW_PROJECT_MAX_BYTES = env_int("LEDGERFLOW_PROJECT_MAX_BYTES", 512 * 1024 * 1024)
LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT = env_bool("LEDGERFLOW_PROJECTS_ALLOW_LOCAL_GIT", False)
LEDGERFLOW_PROJECT_DEFAULT_TIMEOUT = env_int("LEDGERFLOW_PROJECT_DEFAULT_TIMEOUT", 3600)
LEDGERFLOW_PROJECT_MAX_TIMEOUT = env_int("LEDGERFLOW_PROJECT_MAX_TIMEOUT", 24 * 3600)
# A worker renews its run's lease every quarter of this; a RUNNING run whose lease ran out
# lost its worker: the sweeper fails it, or requeues it if its entry point is safe_to_retry
# (at most LEDGERFLOW_PROJECT_MAX_ATTEMPTS attempts).
LEDGERFLOW_PROJECT_LEASE_SECONDS = env_int("LEDGERFLOW_PROJECT_LEASE_SECONDS", 90)
LEDGERFLOW_PROJECT_MAX_ATTEMPTS = env_int("LEDGERFLOW_PROJECT_MAX_ATTEMPTS", 3)
# Where project commands reach this server (MLFLOW_TRACKING_URI of the command).
LEDGERFLOW_PUBLIC_URL = env_str("LEDGERFLOW_PUBLIC_URL", "http://127.0.0.1:8000")
STORAGES["projects"] = {  # uploaded project archives
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(DATA_DIR / "projects")},
}
STORAGES["reports"] = {  # disclosure PDFs, every version kept
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": env_str("LEDGERFLOW_REPORTS_ROOT", str(DATA_DIR / "reports"))},
}
# Object storage: setting AWS_STORAGE_BUCKET_NAME moves artifacts, model packages, project
# archives and disclosure PDFs into that S3 bucket (any S3-compatible server through
# AWS_S3_ENDPOINT_URL), each under its own prefix. Reads stream (config/storage.py); downloads
# may be answered with presigned URLs (LEDGERFLOW_S3_PRESIGNED_DOWNLOADS).
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "")
LEDGERFLOW_S3_PRESIGNED_DOWNLOADS = env_bool("LEDGERFLOW_S3_PRESIGNED_DOWNLOADS", False)
if AWS_STORAGE_BUCKET_NAME:
    from boto3.s3.transfer import TransferConfig

    # multipart in 8 MB parts, at most 4 of them in memory per upload (s3transfer's default: 10)
    _TRANSFER = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
    _TRANSFER.max_in_memory_upload_chunks = 4
    _S3_OPTIONS = {
        "transfer_config": _TRANSFER,
        "bucket_name": AWS_STORAGE_BUCKET_NAME,
        "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
        "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
        # None: boto3's own chain (instance role, ~/.aws) when not given here
        "access_key": env_secret("AWS_ACCESS_KEY_ID", "") or None,
        "secret_key": env_secret("AWS_SECRET_ACCESS_KEY", "") or None,
        "default_acl": None,
        "querystring_expire": env_int("LEDGERFLOW_S3_PRESIGNED_SECONDS", 300),
        "max_memory_size": 8 * 1024 * 1024,  # writes opened in "wb" spill to disk past this
        "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE", "") or None,
    }
    for _alias, _overwrite in (("artifacts", True), ("registry", False),
                               ("projects", False), ("reports", False)):
        STORAGES[_alias] = {
            "BACKEND": "config.storage.StreamingS3Storage",
            "OPTIONS": {**_S3_OPTIONS, "location": _alias, "file_overwrite": _overwrite},
        }

# A generation whose lease was not renewed this long lost its worker: the sweeper queues it
# again (at most LEDGERFLOW_REPORT_MAX_ATTEMPTS attempts, then FAILED).
LEDGERFLOW_REPORT_LEASE_SECONDS = env_int("LEDGERFLOW_REPORT_LEASE_SECONDS", 90)
LEDGERFLOW_REPORT_MAX_ATTEMPTS = env_int("LEDGERFLOW_REPORT_MAX_ATTEMPTS", 3)

# The job runner (config/jobs): an attempt's worker renews its lease every quarter of the
# kind's lease; an interrupted or lost attempt is retried after LEDGERFLOW_JOB_BACKOFF_SECONDS,
# doubling each time up to the maximum; a queued job no worker took this long after it was
# handed over is handed over again. Kinds without settings of their own use the defaults.
LEDGERFLOW_JOB_LEASE_SECONDS = env_int("LEDGERFLOW_JOB_LEASE_SECONDS", 90)
LEDGERFLOW_JOB_MAX_ATTEMPTS = env_int("LEDGERFLOW_JOB_MAX_ATTEMPTS", 3)
LEDGERFLOW_JOB_BACKOFF_SECONDS = env_int("LEDGERFLOW_JOB_BACKOFF_SECONDS", 10)
LEDGERFLOW_JOB_BACKOFF_MAX_SECONDS = env_int("LEDGERFLOW_JOB_BACKOFF_MAX_SECONDS", 600)
LEDGERFLOW_JOB_RESEND_SECONDS = env_int("LEDGERFLOW_JOB_RESEND_SECONDS", 120)

# /metrics (Prometheus) answers only with "Authorization: Bearer <this>" when set.
LEDGERFLOW_METRICS_TOKEN = env_secret("LEDGERFLOW_METRICS_TOKEN", "")

# Key for the HMAC of API token secrets; a separate variable lets it be rotated apart from
# SECRET_KEY (rotating it invalidates every token).
LEDGERFLOW_TOKEN_HMAC_KEY = env_secret("LEDGERFLOW_TOKEN_HMAC_KEY", SECRET_KEY)

# Audit checkpoints: the Ed25519 signing key, its name and the logs' origin prefix.
LEDGERFLOW_SIGNING_KEY_FILE = env_str("LEDGERFLOW_SIGNING_KEY_FILE",
                                      str(DATA_DIR / "audit-signing-key.pem"))
LEDGERFLOW_SIGNING_KEY_AUTOCREATE = env_bool("LEDGERFLOW_SIGNING_KEY_AUTOCREATE", True)
LEDGERFLOW_AUDIT_KEY_NAME = env_str("LEDGERFLOW_AUDIT_KEY_NAME", "ledgerflow-audit")
# After a rotation: the verifier keys ("name+id+base64", as GET /api/v1/audit/public-key/
# shows them) of the keys that signed before, comma-separated; their checkpoints keep verifying.
LEDGERFLOW_AUDIT_RETIRED_KEYS = env_list("LEDGERFLOW_AUDIT_RETIRED_KEYS", [])
LEDGERFLOW_AUDIT_ORIGIN = env_str("LEDGERFLOW_AUDIT_ORIGIN", "ledgerflow.local/audit")

# Called by tenancy.services.organization_create, in its transaction, for each new org.
LEDGERFLOW_ORG_INITIALIZERS = ["tracking.services.experiments.experiment_default_create"]
# Called by tracking.services.runs before a run is deleted; each may refuse with an error.
LEDGERFLOW_RUN_DELETE_GUARDS = ["models_registry.selectors.run_delete_guard"]

# django-guid: the request id, accepted from a well-formed X-Request-ID or generated.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
    "INTEGRATIONS": [],
}

from config.settings.fragments.celery import *  # noqa: E402,F403
from config.settings.fragments.csp import *  # noqa: E402,F403
from config.settings.fragments.logging import *  # noqa: E402,F403
from config.settings.fragments.quotas import *  # noqa: E402,F403
from config.settings.fragments.rest import *  # noqa: E402,F403
from config.settings.fragments.sandbox import *  # noqa: E402,F403
from config.settings.fragments.throttling import *  # noqa: E402,F403

# isort: split
# After throttling: single sign-on adds its backend to throttling's AUTHENTICATION_BACKENDS.
from config.settings.fragments.oidc import *  # noqa: E402,F403
