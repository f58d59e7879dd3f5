"""Packaging on the `packaging` queue, and the sweeper that keeps no version stuck."""

import logging

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from audit.actors import Actor
from models_registry import packaging, services
from models_registry.models import ModelVersion, VersionStatus

logger = logging.getLogger(__name__)

PACKAGE_TASK = "models_registry.package"
MAX_RETRIES = 3


def package_enqueue(version_pk: int) -> None:
    """Hand a version to the packaging queue (after commit); a lost message is re-sent by the
    sweeper, and a duplicate one is harmless."""
    try:
        package_model_version.apply_async(args=[version_pk], queue="packaging")
    except Exception:  # broker down: the version stays PENDING and the sweeper sends it later
        logger.exception("could not enqueue packaging of model version %s", version_pk)


@shared_task(name=PACKAGE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=MAX_RETRIES)
def package_model_version(self, version_pk: int) -> str:
    try:
        return packaging.package(version_pk, task_id=self.request.id or "")
    except packaging.AttemptInterrupted as exc:
        actor = Actor.task(PACKAGE_TASK, self.request.id or "")
        if self.request.retries >= MAX_RETRIES:
            services.packaging_fail(version_pk=version_pk, attempt=exc.attempt, actor=actor,
                                    reason=f"Packaging failed {MAX_RETRIES + 1} times: "
                                           f"{exc.error}")
            return "failed"
        services.packaging_release(version_pk=version_pk, attempt=exc.attempt,
                                   error=exc.error, actor=actor)
        raise self.retry(countdown=5 * (self.request.retries + 1)) from exc


@shared_task(name="models_registry.sweep_packaging")
def sweep_packaging() -> int:
    """Celery beat: re-send versions whose attempt died (lease ran out) or whose message never
    reached a worker. Packaging is idempotent, so re-sending is always safe."""
    now = timezone.now()
    grace = timezone.timedelta(seconds=settings.LEDGERFLOW_PACKAGING_LEASE_SECONDS)
    stuck = ModelVersion.objects.filter(status=VersionStatus.PENDING_REGISTRATION).filter(
        Q(packaging_lease_until__lt=now)
        | Q(packaging_lease_until__isnull=True, packaging_enqueued_at__lt=now - grace))
    count = 0
    for pk in stuck.values_list("pk", flat=True)[:500]:
        package_enqueue(pk)
        count += 1
    if count:
        logger.info("re-sent %d model versions to packaging", count)
    return count
