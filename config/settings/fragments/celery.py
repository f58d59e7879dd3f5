"""Celery: Redis in production and tests, the filesystem broker in the embedded default."""

from config.env import env_int, env_str
from config.paths import DATA_DIR

_SPOOL = DATA_DIR / "broker"

# "localhost" only to spare kombu a warning; the filesystem transport has no host.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", f"file://{DATA_DIR / 'results'}")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Producer and consumer share one spool folder; the worker moves handled messages aside.
    # Kombu and Celery's file backend expect the folders to exist.
    for _folder in (_SPOOL / "queue", _SPOOL / "processed", _SPOOL / "control",
                    DATA_DIR / "results"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_SPOOL / "queue"),
        "data_folder_out": str(_SPOOL / "queue"),
        "processed_folder": str(_SPOOL / "processed"),
        # exchange bindings; kombu's default is "control" in the working directory
        "control_folder": str(_SPOOL / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task, so an unacknowledged late-ack task is not redelivered early.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7200)}

CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Celery beat: sign audit checkpoints of every organization whose log grew.
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoints": {
        "task": "audit.checkpoint_all",
        "schedule": float(env_int("LEDGERFLOW_CHECKPOINT_INTERVAL", 3600)),
    },
}

# The job runner's sweep (config/jobs/runner.py): lost attempts, jobs no worker took. Each job
# is sent to its kind's queue (config/jobs/kinds.py), so a worker started with
# `--queues packaging` runs only packaging jobs.
CELERY_BEAT_SCHEDULE["jobs-sweep"] = {
    "task": "jobs.sweep",
    "schedule": float(env_int("LEDGERFLOW_JOBS_SWEEP_INTERVAL", 60)),
}
