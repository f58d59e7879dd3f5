"""Disclosure generation on the `reports` queue, and the sweeper that keeps none stuck."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from audit.actors import Actor
from reports import generation, services
from reports.models import Disclosure, DisclosureStatus

logger = logging.getLogger(__name__)
RESEND_AFTER_SECONDS = 120


def disclosure_enqueue(pk: int) -> None:
    """Hand a generation to the reports queue (after commit); if the broker is down, the
    sweeper sends it later."""
    try:
        disclosure_generate_task.apply_async(args=[pk], queue="reports")
    except Exception:
        logger.exception("could not enqueue disclosure %s; the sweeper will", pk)


@shared_task(name="reports.generate", bind=True, acks_late=True, reject_on_worker_lost=True)
def disclosure_generate_task(self, pk: int) -> str:
    return generation.generate(pk, task_id=self.request.id or "")


@shared_task(name="reports.sweep")
def disclosures_sweep() -> dict:
    """Celery beat: a generation RUNNING past its lease lost its worker (queued again, or
    FAILED after the last attempt); queued ones long waiting are handed over again (a second
    hand-over is harmless: the claim takes each once)."""
    now, actor = timezone.now(), Actor.task("reports.sweep")
    lease = timezone.timedelta(seconds=settings.LEDGERFLOW_REPORT_LEASE_SECONDS)
    lost = Disclosure.objects.filter(status=DisclosureStatus.RUNNING, started_at__lt=now - lease)
    requeued = sum(1 for pk in lost.values_list("pk", flat=True)[:100]
                   if services.disclosure_fail(pk=pk, attempt=None, actor=actor, retry=True,
                                               message="The worker generating it was lost."))
    waiting = Disclosure.objects.filter(
        status=DisclosureStatus.QUEUED,
        created_at__lt=now - timezone.timedelta(seconds=RESEND_AFTER_SECONDS))
    resent = 0
    for pk in waiting.values_list("pk", flat=True)[:100]:
        disclosure_enqueue(pk)
        resent += 1
    return {"requeued": requeued, "resent": resent}
