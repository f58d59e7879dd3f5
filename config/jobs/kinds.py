"""What an app declares about a kind of job: its queue, and the hooks through which the runner
moves the app's own object. The runner calls them; none of them knows about leases, retries or
the broker.

Hooks, each given the `Attempt` concerned:
- `claim(attempt) -> bool`, in the runner's claim transaction: move the object to running for
  this attempt, audited. False: nothing to do (it ended or went away meanwhile).
- `work(attempt)`, in no transaction: the work itself. It ends the object through the app's
  own services (done, or failed for a reason the user must fix) and checks
  `attempt.cancelled()` while it runs. Raising means the attempt was interrupted by something
  else (storage, database, the worker): the runner retries or gives up.
- `retry(attempt, reason) -> bool` and `give_up(attempt, reason) -> bool`, in the runner's
  transaction: the object back to queued, or failed with `reason`, audited. False: the
  attempt no longer holds it (it ended meanwhile).
- `retryable(attempt) -> bool`: may a lost or interrupted attempt simply run again (a project
  entry point that is not `safe_to_retry` may not).
- `sweep()`, optional, on every sweep: the kind's own cleanup (containers, say).
- `org_of(target) -> int | None`, optional: the organization whose object the job works on.
  The work, and the retry or give-up after it, run scoped to it (config/scope.py): on
  PostgreSQL they see and write that organization's rows only. `org_of_model(Model)` makes
  it for a model with an `org`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

# Each workload has its queue; a worker started for one runs only its jobs.
QUEUES = ("default", "packaging", "projects", "reports")


def _always(_attempt) -> bool:
    return True


@dataclass(frozen=True)
class Kind:
    name: str
    queue: str
    claim: Callable
    work: Callable
    retry: Callable
    give_up: Callable
    retryable: Callable = _always
    sweep: Callable | None = None
    org_of: Callable | None = None
    # settings read at each use, so an operator (or a test) may change them
    lease_setting: str = "LEDGERFLOW_JOB_LEASE_SECONDS"
    attempts_setting: str = "LEDGERFLOW_JOB_MAX_ATTEMPTS"

    def __post_init__(self):
        if self.queue not in QUEUES:
            raise ValueError(f"job kind {self.name}: unknown queue {self.queue!r}")

    @property
    def lease_seconds(self) -> int:
        return int(getattr(settings, self.lease_setting))

    @property
    def max_attempts(self) -> int:
        return max(1, int(getattr(settings, self.attempts_setting)))


def org_of_model(model) -> Callable:
    """`org_of` for a kind whose targets are rows of `model` (a model with an `org`)."""
    return lambda pk: model.objects.filter(pk=pk).values_list("org_id", flat=True).first()


_KINDS: dict[str, Kind] = {}


def declare(kind: Kind) -> Kind:
    """Register a kind (from the app's AppConfig.ready); declaring one twice replaces it."""
    _KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r} is declared (declared: "
                          f"{', '.join(sorted(_KINDS)) or 'none'})") from None


def declared() -> list[Kind]:
    return list(_KINDS.values())
