"""The job runner (config/jobs): claim, lease and heartbeat, retry with backoff, cancel, the
stale-lease sweep, hand-over again. A kind declared here keeps its object's state in a dict
and records each hook the runner calls; the apps' kinds are tested with real workers in
tests/projects, tests/models_registry and tests/reports."""

import datetime
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from config.jobs import runner
from config.jobs.kinds import Kind, declare, kind_of
from config.jobs.models import Job, JobStatus

KIND = "tests.job"
STATE: dict[int, str] = {}   # target -> QUEUED | RUNNING | DONE | FAILED
CALLS: list[tuple] = []
BEHAVIOUR: dict[str, object] = {}


def _claim(attempt) -> bool:
    assert connection.in_atomic_block, "the claim hook runs in the runner's transaction"
    CALLS.append(("claim", attempt.target, attempt.number))
    if STATE.get(attempt.target) != "QUEUED":
        return False
    STATE[attempt.target] = "RUNNING"
    return True


def _work(attempt):
    CALLS.append(("work", attempt.target, attempt.number))
    hold = BEHAVIOUR.get("hold")
    if hold is not None:  # a long job: until the test says so, or a cancel arrives
        while not hold.is_set() and not attempt.cancelled():
            time.sleep(0.05)
        if attempt.cancelled():
            STATE[attempt.target] = "CANCELLED"
            return "cancelled"
    failure = BEHAVIOUR.get("raise")
    if failure:
        raise RuntimeError(failure)
    STATE[attempt.target] = "DONE"
    return "worked"


def _ending(hook: str, state: str):
    """The retry and give-up hooks: the object moves to `state` if the attempt holds it."""
    def end(attempt, reason) -> bool:
        assert connection.in_atomic_block
        CALLS.append((hook, attempt.target, attempt.number, attempt.by, reason))
        if STATE.get(attempt.target) != "RUNNING":
            return False
        STATE[attempt.target] = state
        return True
    return end


_retry, _give_up = _ending("retry", "QUEUED"), _ending("give_up", "FAILED")


def _sweep():
    CALLS.append(("sweep",))


declare(Kind(name=KIND, queue="default", claim=_claim, work=_work, retry=_retry,
             give_up=_give_up, retryable=lambda a: BEHAVIOUR.get("retryable", True),
             sweep=_sweep, lease_setting="TEST_JOB_LEASE_SECONDS",
             attempts_setting="TEST_JOB_MAX_ATTEMPTS"))


@pytest.fixture(autouse=True)
def fresh(settings):
    STATE.clear()
    CALLS.clear()
    BEHAVIOUR.clear()
    settings.TEST_JOB_LEASE_SECONDS = 60
    settings.TEST_JOB_MAX_ATTEMPTS = 3
    settings.LEDGERFLOW_JOB_BACKOFF_SECONDS = 10
    settings.LEDGERFLOW_JOB_BACKOFF_MAX_SECONDS = 25
    yield


def submitted(target: int = 1) -> Job:
    STATE[target] = "QUEUED"
    with transaction.atomic():
        return runner.submit(KIND, target)


def calls(name: str) -> list[tuple]:
    return [c for c in CALLS if c[0] == name]


def test_a_job_is_claimed_worked_and_done_once(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as sent:
        job = submitted()
    assert len(sent) == 1  # handed to the broker only once the submission commits
    assert (job.status, job.queue, job.attempt) == (JobStatus.QUEUED, "default", 0)
    assert runner.execute(job.pk) == "worked"
    job.refresh_from_db()
    assert (job.status, job.attempt, job.lease_until) == (JobStatus.DONE, 1, None)
    assert CALLS == [("claim", 1, 1), ("work", 1, 1)]
    # the message delivered a second time does nothing
    assert runner.execute(job.pk) == "skipped"
    assert len(calls("work")) == 1


def test_an_object_the_app_no_longer_queues_is_not_worked(db):
    job = submitted()
    STATE[1] = "DONE"  # ended meanwhile (deleted, cancelled through the app, ...)
    assert runner.execute(job.pk) == "skipped"
    assert calls("work") == [] and Job.objects.get(pk=job.pk).status == JobStatus.DONE


def test_an_interrupted_attempt_is_retried_after_a_doubling_backoff_then_given_up(db):
    BEHAVIOUR["raise"] = "storage is down"
    job = submitted()
    assert runner.execute(job.pk) == "retry"
    job.refresh_from_db()
    assert (job.status, job.attempt, STATE[1]) == (JobStatus.QUEUED, 1, "QUEUED")
    assert "storage is down" in job.last_error
    waited = (job.not_before - job.handed_over_at).total_seconds()
    assert waited == 10
    # a message that arrives before the backoff ends runs nothing
    assert runner.execute(job.pk) == "early" and len(calls("work")) == 1
    Job.objects.filter(pk=job.pk).update(not_before=timezone.now())
    assert runner.execute(job.pk) == "retry"
    job.refresh_from_db()
    assert (job.not_before - job.handed_over_at).total_seconds() == 20  # doubled
    Job.objects.filter(pk=job.pk).update(not_before=timezone.now())
    assert runner.execute(job.pk) == "failed"  # the third and last attempt
    job.refresh_from_db()
    assert (job.status, job.attempt, STATE[1]) == (JobStatus.DONE, 3, "FAILED")
    [give_up] = calls("give_up")
    assert give_up[4].startswith("Gave up after 3 attempts. The last: RuntimeError: storage")
    assert [c[2] for c in calls("retry")] == [1, 2]
    assert runner.backoff_seconds(3) == 25  # capped


def test_a_kind_that_may_not_retry_is_given_up_at_once(db):
    BEHAVIOUR.update({"raise": "the worker broke", "retryable": False})
    job = submitted()
    assert runner.execute(job.pk) == "failed"
    assert calls("retry") == []
    assert calls("give_up")[0][4] == "RuntimeError: the worker broke"
    assert Job.objects.get(pk=job.pk).status == JobStatus.DONE


def test_a_lost_attempt_is_retried_by_the_sweep_and_given_up_when_none_remain(db, settings):
    settings.TEST_JOB_MAX_ATTEMPTS = 2
    settings.LEDGERFLOW_JOB_BACKOFF_SECONDS = 0
    job = submitted()
    past = timezone.now() - datetime.timedelta(seconds=1)
    for number, outcome in ((1, "QUEUED"), (2, "FAILED")):
        kind, attempt, _ = runner.claim(job.pk)
        assert kind is kind_of(KIND) and attempt.number == number
        assert runner.sweep()["retried"] == 0  # its lease is live: the sweep leaves it alone
        Job.objects.filter(pk=job.pk).update(lease_until=past)  # its worker died
        result = runner.sweep()
        assert STATE[1] == outcome
        assert result == {"retried": int(number == 1), "failed": int(number == 2), "resent": 0}
    retry, give_up = calls("retry")[0], calls("give_up")[0]
    assert retry[3] == "jobs.sweep" and retry[4] == "The worker running attempt 1 was lost."
    assert give_up[4] == ("Gave up after 2 attempts. The last: "
                          "The worker running attempt 2 was lost.")
    assert calls("work") == []  # the sweep never runs the work itself
    assert ("sweep",) in CALLS  # each kind's own sweep ran too


def test_the_sweep_hands_over_again_only_jobs_no_worker_took(db, settings,
                                                           django_capture_on_commit_callbacks):
    settings.LEDGERFLOW_JOB_RESEND_SECONDS = 60
    fresh_job, old, waiting = submitted(1), submitted(2), submitted(3)
    long_ago = timezone.now() - datetime.timedelta(minutes=5)
    Job.objects.filter(pk__in=[old.pk, waiting.pk]).update(handed_over_at=long_ago)
    Job.objects.filter(pk=waiting.pk).update(  # a retry whose backoff has not ended
        not_before=timezone.now() + datetime.timedelta(minutes=1))
    assert runner.sweep()["resent"] == 1
    assert Job.objects.get(pk=old.pk).handed_over_at > long_ago
    assert Job.objects.get(pk=waiting.pk).handed_over_at == long_ago
    assert Job.objects.get(pk=fresh_job.pk).handed_over_at < timezone.now()


def test_a_queued_job_is_dequeued_by_a_cancel(db):
    job = submitted()
    with transaction.atomic():
        assert runner.cancel(KIND, 1) == "dequeued"
    assert runner.execute(job.pk) == "skipped" and calls("claim") == []
    with transaction.atomic():
        assert runner.cancel(KIND, 1) == "none"
        assert runner.cancel(KIND, 99) == "none"


def test_a_running_job_sees_its_cancel_and_its_lease_is_renewed_while_it_works(
        transactional_db, settings):
    settings.TEST_JOB_LEASE_SECONDS = 2  # renewed every half second
    BEHAVIOUR["hold"] = threading.Event()
    job = submitted()
    outcome = []
    worker = threading.Thread(target=lambda: (outcome.append(runner.execute(job.pk)),
                                              connection.close()))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not calls("work"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first = Job.objects.get(pk=job.pk).lease_until
        time.sleep(3)  # longer than the lease: only heartbeats keep it
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING and job.lease_until > first
        assert job.lease_until > timezone.now()
        assert runner.sweep()["retried"] == 0 and STATE[1] == "RUNNING"
        with transaction.atomic():
            assert runner.cancel(KIND, 1) == "requested"
        worker.join(timeout=10)
        assert not worker.is_alive() and outcome == ["cancelled"]
    finally:
        BEHAVIOUR["hold"].set()
        worker.join(timeout=10)
    job.refresh_from_db()
    assert (job.status, job.cancel_requested, STATE[1]) == (JobStatus.DONE, True, "CANCELLED")


def test_kinds_are_declared_with_known_queues_and_looked_up_by_name():
    with pytest.raises(ValueError, match="unknown queue"):
        Kind(name="x", queue="elsewhere", claim=_claim, work=_work, retry=_retry,
             give_up=_give_up)
    with pytest.raises(LookupError, match="no job kind 'nothing'"):
        kind_of("nothing")
    from celery import current_app

    for name in ("projects.run", "models_registry.package", "reports.generate"):
        assert kind_of(name).name == name
        assert name in current_app.tasks  # a task per kind, named after it
    assert {kind_of(n).queue for n in ("projects.run", "models_registry.package",
                                       "reports.generate")} == {"projects", "packaging",
                                                                 "reports"}


def test_a_job_goes_to_the_services_broker_whatever_app_is_current(
        db, monkeypatch, django_capture_on_commit_callbacks):
    """Creating another Celery app makes it this thread's current app (a test of the embedded
    broker does): a job must still reach the service's own broker, not the other app's."""
    from celery import Celery, current_app

    from config.celery import app as ours

    sent = []
    monkeypatch.setattr(ours, "send_task", lambda name, **kw: sent.append((name, kw["queue"])))
    other = Celery("elsewhere", set_as_current=True)
    monkeypatch.setattr(other, "send_task", lambda *a, **kw: pytest.fail("sent elsewhere"))
    try:
        assert current_app._get_current_object() is other
        with django_capture_on_commit_callbacks(execute=True):
            submitted()
    finally:
        ours.set_current()
    assert sent == [(KIND, "default")]


SEEN: list[set] = []


def _forgetful_work(attempt):
    """Work with the bug the scope is for: it lists experiments without its organization."""
    from tracking.models import Experiment

    SEEN.append(set(Experiment.objects.values_list("name", flat=True)))


@pytest.mark.postgres_only
@pytest.mark.parametrize("scoping", [False, True])
def test_a_jobs_work_sees_only_its_objects_organization(db, personas, scoping):
    """The kind's `org_of` scopes the work to its target's organization (config/scope.py); a
    kind without it (the defence off) leaks the other organization's rows to a query that
    forgets its filter."""
    from config.jobs.kinds import org_of_model
    from tests.conftest import SETUP
    from tracking.models import Experiment
    from tracking.services.experiments import experiment_create

    name = f"tests.scoped-{scoping}"
    declare(Kind(name=name, queue="default", claim=lambda a: True, work=_forgetful_work,
                 retry=_retry, give_up=_give_up,
                 org_of=org_of_model(Experiment) if scoping else None))
    own = experiment_create(org=personas.org_a, name="a-credit", actor=SETUP)
    experiment_create(org=personas.org_b, name="b-secret", actor=SETUP)
    SEEN.clear()
    with transaction.atomic():
        runner.submit(name, own.pk)
    assert runner.run_here(name, own.pk) == "done"
    assert "a-credit" in SEEN[0]
    assert ("b-secret" in SEEN[0]) is not scoping
    # the scope ended with the work: this test's connection sees both again
    assert {"a-credit", "b-secret"} <= set(Experiment.objects.values_list("name", flat=True))
