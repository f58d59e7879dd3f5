"""Request body limits and per-organization artifact quotas (issue 23, item 5). 0 turns a limit off.

A request whose Content-Length is past its limit is answered 413 before anything reads its body
(config/limits.py): MLflow routes with `{"error_code": "RESOURCE_EXHAUSTED", ...}`, /api/v1/
with `{"code": "request_too_large", ...}`. MLflow itself maps RESOURCE_EXHAUSTED to 429, which
its client retries with back-off for minutes; a body that is too large stays too large, so 413.

- LEDGERFLOW_MAX_REQUEST_BYTES, 32 MiB: every request but the uploads below. These bodies are
  JSON read into memory (MLflow's RPCs, /api/v1/). MLflow's own largest legal request is a
  log-inputs call with a dataset profile of up to 16 MiB and a 1 MiB schema, escaped inside
  JSON (mlflow/utils/validation.py); a log-batch is at most 1 MB. Django's own in-memory limit
  (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default, a 500 on MLflow's routes) is set to the same.
- LEDGERFLOW_MAX_ARTIFACT_BYTES, 5 GiB: one artifact file, sent by the client as one PUT (model
  weights are the large ones; 5 GiB is also S3's largest single upload). Checked against the
  Content-Length before the body is read, and while a chunked body streams.
- Project archives keep their own LEDGERFLOW_PROJECT_MAX_BYTES (config/settings/base.py).
  For these upload views the body may carry that much plus LEDGERFLOW_MAX_REQUEST_BYTES
  (multipart framing, the other fields); the exact per-file limit is the storing code's.
- LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES, 0 (none): the artifact bytes each organization may keep,
  unless its admin page sets its own (Organization.artifact_quota_bytes; 0 there: no quota for
  that organization). What a sensible quota is depends on the disk or bucket, which only the
  operator knows; an upgrade must not start refusing uploads.
"""

from config.env import env_int

LEDGERFLOW_MAX_REQUEST_BYTES = env_int("LEDGERFLOW_MAX_REQUEST_BYTES", 32 * 1024 * 1024)
LEDGERFLOW_MAX_ARTIFACT_BYTES = env_int("LEDGERFLOW_MAX_ARTIFACT_BYTES", 5 * 1024 ** 3)
LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES = env_int("LEDGERFLOW_ORG_ARTIFACT_QUOTA_BYTES", 0)

# Views whose body is a file, by URL name: the setting that limits the file. Their bodies may
# be that large plus LEDGERFLOW_MAX_REQUEST_BYTES.
LEDGERFLOW_UPLOAD_VIEWS = {
    "mlflow-artifacts": "LEDGERFLOW_MAX_ARTIFACT_BYTES",  # tracking/mlflow_api/artifacts.py
    "project-run-list": "LEDGERFLOW_PROJECT_MAX_BYTES",  # projects/apis.py, archive uploads
    "workflow-list": "LEDGERFLOW_PROJECT_MAX_BYTES",
}

# Django's own limit on a body read into memory (request.body, non-file form fields); the
# middleware answers 413 before Django's 400 would.
DATA_UPLOAD_MAX_MEMORY_SIZE = LEDGERFLOW_MAX_REQUEST_BYTES or None
