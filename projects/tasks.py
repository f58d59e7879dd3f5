"""Project runs on the `projects` queue, and the sweeper that keeps none stuck."""

import logging
import shutil

from celery import shared_task
from django.utils import timezone

from audit.actors import Actor
from projects import execution, services
from projects.models import ProjectRunLease, ProjectRunStatus

logger = logging.getLogger(__name__)

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
    """Celery beat: runs whose worker was lost (lease not renewed) are failed, or queued again
    when safe to retry; submissions no worker took are handed over again."""
    actor = Actor.task("projects.sweep")
    lost = ProjectRunLease.objects.filter(project_run__status=ProjectRunStatus.RUNNING,
                                          lease_until__lt=timezone.now())
    outcomes = [services.project_run_lost(pk=pk, actor=actor)
                for pk in lost.values_list("pk", flat=True)[:200]]
    resent = services.project_run_requeue_due()
    for pk in resent:
        project_run_enqueue(pk)
    _sweep_containers()
    return {"failed": outcomes.count(ProjectRunStatus.FAILED),
            "requeued": outcomes.count(ProjectRunStatus.QUEUED), "resent": len(resent)}


def _sweep_containers() -> None:
    """docker_env runs are the engine's children, not the worker's: a container whose worker
    died is killed once its deadline has passed."""
    from django.conf import settings

    from config.sandbox import docker

    if shutil.which(settings.LEDGERFLOW_DOCKER) is None:
        return
    try:
        docker.sweep(settings.LEDGERFLOW_DOCKER)
    except Exception:  # no engine here: nothing of ours can be running in one
        logger.debug("no docker engine to sweep", exc_info=True)
