"""The projects app's kind of job, for the job runner (config/jobs): one project run, on the
`projects` queue. The runner claims, leases, retries (only entry points that are
`safe_to_retry`) and sweeps; projects.execution does the work."""

import logging
import shutil

from django.conf import settings

from audit.actors import Actor
from config.jobs.kinds import Kind, declare, org_of_model
from projects import execution, services
from projects.models import ProjectRun

logger = logging.getLogger(__name__)


def _sweep_containers() -> None:
    """docker_env runs are the engine's children, not the worker's: a container whose worker
    died is killed once its deadline has passed."""
    from config.sandbox import docker

    if shutil.which(settings.LEDGERFLOW_DOCKER) is None:
        return
    try:
        docker.sweep(settings.LEDGERFLOW_DOCKER)
    except Exception:  # no engine here: nothing of ours can be running in one
        logger.debug("no docker engine to sweep", exc_info=True)


PROJECT_RUN = declare(Kind(
    name=services.JOB, queue="projects",
    claim=lambda a: services.project_run_claim_within(pk=a.target, attempt=a.number,
                                                      actor=Actor.job(a)),
    work=execution.execute,
    retry=lambda a, reason: services.project_run_requeue_within(
        pk=a.target, attempt=a.number, reason=reason, actor=Actor.job(a)),
    give_up=lambda a, reason: services.project_run_give_up_within(
        pk=a.target, attempt=a.number, reason=reason, actor=Actor.job(a)),
    retryable=lambda a: services.project_run_retryable(pk=a.target),
    sweep=_sweep_containers,
    org_of=org_of_model(ProjectRun),
    lease_setting="LEDGERFLOW_PROJECT_LEASE_SECONDS",
    attempts_setting="LEDGERFLOW_PROJECT_MAX_ATTEMPTS"))
