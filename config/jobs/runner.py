"""The job runner: submit, claim, heartbeat, retry with backoff, cancel, sweep.

A job is stored with the object it works on, in the app's transaction (`submit`), and handed
to the broker once that commits. A worker claims it (`execute`): one transaction moves the
job to RUNNING for a new attempt and lets the app move its object (its `claim` hook, audited).
While the work runs, a thread renews the attempt's lease. The work ends the object itself;
when it raises instead, the attempt is retried after a backoff that doubles each time, if the
kind allows it and attempts remain, or the object is given up on (FAILED, with the reason).
Beat's `sweep` finds attempts whose lease ran out (their worker died) and treats them the
same way, and hands over again queued jobs no worker took. A cancel (`cancel`) ends a queued
job at once and asks a running one to stop; the work sees it through `attempt.cancelled()`.

Each change of a job happens in the transaction of the app's own audited change, except the
lease renewals and hand-overs, which change nothing of the work.
"""

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.jobs.kinds import Kind, declared, kind_of
from config.jobs.models import Job, JobStatus
from config.scope import scoped

logger = logging.getLogger(__name__)

SWEEP_BATCH = 200
CANCEL_CHECK_SECONDS = 1.0


@dataclass
class Attempt:
    """One attempt at a job, as the hooks see it. `by` names who acts (the kind's name on a
    worker, "jobs.sweep" when beat found the attempt lost); `task_id` is Celery's."""

    job: int
    kind: str
    target: int
    number: int
    by: str
    task_id: str = ""
    _checked_at: float = field(default=0.0, repr=False)
    _cancelled: bool = field(default=False, repr=False)

    def cancelled(self) -> bool:
        """True once a cancel was asked for, or the attempt no longer holds the job (the sweeper
        gave it to another): the work should stop. Reads the database at most once a second."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._checked_at >= CANCEL_CHECK_SECONDS:
            self._checked_at = now
            self._cancelled = not Job.objects.filter(
                pk=self.job, status=JobStatus.RUNNING, attempt=self.number,
                cancel_requested=False).exists()
        return self._cancelled


def backoff_seconds(attempt: int) -> int:
    """How long a retry waits after failed attempt `attempt`: doubling from the base, capped."""
    base = settings.LEDGERFLOW_JOB_BACKOFF_SECONDS
    return min(base * 2 ** max(attempt - 1, 0), settings.LEDGERFLOW_JOB_BACKOFF_MAX_SECONDS)


def _send(pk: int, kind_name: str, queue: str, countdown: float = 0) -> None:
    """Hand a job to the broker: a task named after its kind (config/jobs/tasks.py), on the
    kind's queue. If the broker is down, the job stays QUEUED and the sweeper hands it over
    later; a message sent twice is harmless (a job is claimed once)."""
    from config.celery import app  # the service's own app, whatever this thread's current one

    try:
        app.send_task(kind_name, kwargs={"job": pk}, queue=queue, countdown=countdown or None)
    except Exception:
        logger.exception("could not hand job %s to the %s queue; the sweeper will", pk, queue)


def submit(kind_name: str, target: int) -> Job:
    """Queue a job for `target`, in the caller's transaction; it reaches the broker once that
    commits. Submitting a target again queues it again."""
    kind = kind_of(kind_name)
    job, _ = Job.objects.update_or_create(
        kind=kind.name, target=target,
        defaults={"queue": kind.queue, "status": JobStatus.QUEUED, "handed_over_at": timezone.now(),
                  "not_before": None, "lease_until": None, "cancel_requested": False})
    transaction.on_commit(lambda: _send(job.pk, kind.name, kind.queue))
    return job


def cancel(kind_name: str, target: int) -> str:
    """In the caller's transaction: a queued job is dequeued ("dequeued": the caller ends its
    object), a running one is asked to stop ("requested": its work ends the object), any
    other has nothing to cancel ("none")."""
    job = Job.objects.select_for_update().filter(kind=kind_name, target=target).first()
    if job is None or job.status == JobStatus.DONE:
        return "none"
    if job.status == JobStatus.QUEUED:
        job.status, job.not_before = JobStatus.DONE, None
        job.save(update_fields=["status", "not_before", "updated_at"])
        return "dequeued"
    if not job.cancel_requested:
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested", "updated_at"])
    return "requested"


def _lease_until(kind: Kind):
    return timezone.now() + timezone.timedelta(seconds=kind.lease_seconds)


def _locked(pk: int) -> Job | None:
    return Job.objects.select_for_update().filter(pk=pk).first()


def claim(pk: int, task_id: str = "") -> tuple[Kind | None, Attempt | None, str]:
    """Take a queued job for a new attempt: its kind and the attempt, or (None, None, why
    not). `execute` claims and then works; on its own, for tests of a lease's end."""
    with transaction.atomic():
        job = _locked(pk)
        if job is None or job.status != JobStatus.QUEUED:
            return None, None, "skipped"
        if job.not_before is not None and job.not_before > timezone.now():
            return None, None, "early"  # a duplicate message: the delayed one follows
        kind = kind_of(job.kind)
        job.status, job.attempt = JobStatus.RUNNING, job.attempt + 1
        job.lease_until, job.not_before = _lease_until(kind), None
        job.save(update_fields=["status", "attempt", "lease_until", "not_before", "updated_at"])
        attempt = Attempt(job=job.pk, kind=kind.name, target=job.target, number=job.attempt,
                          by=kind.name, task_id=task_id)
        if not kind.claim(attempt):
            job.status, job.lease_until = JobStatus.DONE, None
            job.save(update_fields=["status", "lease_until", "updated_at"])
            return None, None, "skipped"
    return kind, attempt, "claimed"


def _renew(attempt: Attempt, kind: Kind) -> bool:
    return Job.objects.filter(pk=attempt.job, status=JobStatus.RUNNING,
                              attempt=attempt.number).update(lease_until=_lease_until(kind)) == 1


@contextlib.contextmanager
def _heartbeat(attempt: Attempt, kind: Kind):
    """Renew the attempt's lease from a thread while the work runs: a lease that runs out
    means the worker is gone."""
    stop = threading.Event()
    interval = max(kind.lease_seconds / 4, 0.5)

    def beat():
        try:
            while not stop.wait(interval):
                try:
                    if not _renew(attempt, kind):
                        return  # no longer this attempt's: cancelled() will say so
                except Exception:
                    logger.exception("could not renew the lease of %s", attempt)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"lease-{attempt.job}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def execute(pk: int, task_id: str = "") -> str:
    """Run one job on this worker: what its work answered ("done" when nothing), "retry" or
    "failed" when it raised, or why nothing ran ("skipped", "early")."""
    kind, attempt, outcome = claim(pk, task_id)
    if attempt is None:
        return outcome
    org = kind.org_of(attempt.target) if kind.org_of is not None else None
    with _heartbeat(attempt, kind), scoped(org):  # the object's organization's rows only
        try:
            answer = kind.work(attempt)
        except Exception as exc:
            logger.exception("attempt %d of %s #%d was interrupted", attempt.number, kind.name,
                             attempt.target)
            return _interrupted(attempt, kind, f"{type(exc).__name__}: {exc}")
    with transaction.atomic():
        Job.objects.filter(pk=attempt.job, status=JobStatus.RUNNING, attempt=attempt.number) \
            .update(status=JobStatus.DONE, lease_until=None, updated_at=timezone.now())
    return answer if isinstance(answer, str) else "done"


def run_here(kind_name: str, target: int) -> str:
    """Run the job of `target` in this process, as a worker would (tests, benchmarks, a
    shell); "skipped" when it is not queued."""
    job = Job.objects.filter(kind=kind_name, target=target).values_list("pk", flat=True).first()
    return "skipped" if job is None else execute(job)


def _interrupted(attempt: Attempt, kind: Kind, reason: str) -> str:
    """An attempt that ended without finishing its object: retried after a backoff when the
    kind allows it and attempts remain, else the object is given up on."""
    with transaction.atomic():
        job = _locked(attempt.job)
        if job is None or job.status != JobStatus.RUNNING or job.attempt != attempt.number:
            return "lost"  # the sweeper took it meanwhile
        job.last_error, job.lease_until = reason[:4000], None
        again = not job.cancel_requested and job.attempt < kind.max_attempts and \
            kind.retryable(attempt)
        if again and kind.retry(attempt, reason):
            delay = backoff_seconds(job.attempt)
            job.status, job.handed_over_at = JobStatus.QUEUED, timezone.now()
            job.not_before = job.handed_over_at + timezone.timedelta(seconds=delay)
            job.save()
            transaction.on_commit(lambda: _send(job.pk, job.kind, job.queue, countdown=delay))
            return "retry"
        outcome = "ended"  # the object ended meanwhile: nothing to retry or give up
        if not again:
            if job.attempt >= kind.max_attempts > 1:
                reason = f"Gave up after {job.attempt} attempts. The last: {reason}"
            outcome = "failed" if kind.give_up(attempt, reason) else outcome
        job.status = JobStatus.DONE
        job.save()
        return outcome


def _lost(pk: int) -> str | None:
    with transaction.atomic():
        job = _locked(pk)
        if job is None or job.status != JobStatus.RUNNING or job.lease_until is None or \
                job.lease_until >= timezone.now():
            return None
        try:
            kind = kind_of(job.kind)
        except LookupError:
            logger.error("job %s is of an undeclared kind %r; left as it is", pk, job.kind)
            return None
        attempt = Attempt(job=job.pk, kind=kind.name, target=job.target, number=job.attempt,
                          by="jobs.sweep")
    return _interrupted(attempt, kind, f"The worker running attempt {attempt.number} was lost.")


def sweep() -> dict:
    """Beat: attempts whose lease ran out are retried or given up on; queued jobs handed over
    long ago that no worker took are handed over again; then each kind's own sweep."""
    now = timezone.now()
    lost = list(Job.objects.filter(status=JobStatus.RUNNING, lease_until__lt=now)
                .values_list("pk", flat=True)[:SWEEP_BATCH])
    outcomes = [_lost(pk) for pk in lost]
    due = now - timezone.timedelta(seconds=settings.LEDGERFLOW_JOB_RESEND_SECONDS)
    with transaction.atomic():
        waiting = list(Job.objects.select_for_update(skip_locked=True)
                       .filter(status=JobStatus.QUEUED, handed_over_at__lt=due)
                       .exclude(not_before__gt=now)
                       .values_list("pk", "kind", "queue")[:SWEEP_BATCH])
        Job.objects.filter(pk__in=[pk for pk, _, _ in waiting]).update(handed_over_at=now)
    for pk, kind_name, queue in waiting:
        _send(pk, kind_name, queue)
    for kind in declared():
        if kind.sweep is not None:
            try:
                kind.sweep()
            except Exception:
                logger.exception("the sweep of %s failed", kind.name)
    return {"retried": outcomes.count("retry"), "failed": outcomes.count("failed"),
            "resent": len(waiting)}
