"""MLflow's error format: `{"error_code": ..., "message": ...}` with MLflow's status codes."""

from config.exceptions import ApplicationError

STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    # MLflow answers 429 (and its client retries that); past a size limit or an organization's
    # artifact quota a retry cannot succeed, so 413 (config/settings/fragments/quotas.py).
    "RESOURCE_EXHAUSTED": 413,
    "REQUEST_LIMIT_EXCEEDED": 429,  # throttled or locked out; sent with Retry-After
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}
FROM_KIND = {
    "invalid": "INVALID_PARAMETER_VALUE",
    "already_exists": "RESOURCE_ALREADY_EXISTS",
    "not_found": "RESOURCE_DOES_NOT_EXIST",
    "permission_denied": "PERMISSION_DENIED",
    "conflict": "INVALID_STATE",
    "model_failed": "INTERNAL_ERROR",
    "unavailable": "TEMPORARILY_UNAVAILABLE",
    "resource_exhausted": "RESOURCE_EXHAUSTED",  # tracking.artifacts.ResourceExhausted
}


class MlflowError(Exception):
    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE",
                 retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.retry_after = retry_after  # seconds, for a Retry-After header

    @property
    def status(self) -> int:
        return STATUS[self.error_code]

    @classmethod
    def from_application_error(cls, exc: ApplicationError) -> "MlflowError":
        return cls(exc.message, FROM_KIND[exc.kind])


def missing(name: str) -> MlflowError:
    return MlflowError(f"Missing value for required parameter '{name}'. See the API docs for "
                       "more information about request parameters.")
