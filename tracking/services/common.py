import time

from config.exceptions import ApplicationError


def now_ms() -> int:
    return int(time.time() * 1000)


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, kind="invalid")


def not_found(message: str) -> ApplicationError:
    return ApplicationError(message, kind="not_found")
