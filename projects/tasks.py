"""Project runs on the `projects` queue, and the sweeper that keeps none stuck."""

import logging

from celery import shared_task
from django.utils import timezone

from audit.actors import Actor
from projects import execution, services
from projects.models import ProjectRun, ProjectRunStatus

logger = logging.getLogger(__name__)

REQUEUE_AFTER_SECONDS = 120


def project_run_enqueue(pk: int) -> None:
    """Hand a submission to the projects queue (after commit). A submission is stored first:
    if the broker is down now, the sweeper sends it later."""
    try:
        project_run_execute.apply_async(args=[pk], queue="projects")
    except Exception:
        logger.exception("could not enqueue project run %s; the sweeper will", pk)


@shared_task(name="projects.execute", bind=True)
def project_run_execute(self, pk: int) -> str:
    return execution.execute(pk, task_id=self.request.id or "")


@shared_task(name="projects.sweep")
def project_runs_sweep() -> dict:
    """Celery beat: fail runs whose worker was lost (lease past: start + time limit + margin);
    re-send submissions no worker took."""
    now, actor = timezone.now(), Actor.task("projects.sweep")
    lost = ProjectRun.objects.filter(status=ProjectRunStatus.RUNNING, lease_until__lt=now)
    failed = 0
    for pk in lost.values_list("pk", flat=True)[:200]:
        if services.project_run_finish(pk=pk, attempt=None, status=ProjectRunStatus.FAILED,
                                       actor=actor, message="The worker running it was lost."):
            failed += 1
    waiting = ProjectRun.objects.filter(
        status=ProjectRunStatus.QUEUED,
        enqueued_at__lt=now - timezone.timedelta(seconds=REQUEUE_AFTER_SECONDS))
    resent = 0
    for pk in waiting.values_list("pk", flat=True)[:200]:
        project_run_enqueue(pk)
        resent += 1
    return {"failed": failed, "resent": resent}
