import logging

from celery import shared_task

from audit.models import AuditChainHead, AuditCheckpoint
from audit.services import checkpoint_create
from tenancy.models import Organization

logger = logging.getLogger(__name__)


@shared_task(name="audit.checkpoint_all")
def audit_checkpoint_all() -> int:
    """Celery beat: sign a checkpoint for every organization whose log grew since its last."""
    signed = 0
    for head in AuditChainHead.objects.select_related("org").filter(seq__gt=0):
        latest = AuditCheckpoint.objects.filter(org_id=head.org_id).order_by("-tree_size").first()
        if latest is not None and latest.tree_size >= head.seq:
            continue
        try:
            checkpoint_create(org=head.org)
            signed += 1
        except Exception:  # one organization's failure must not stop the others
            logger.exception("checkpoint failed for %s", head.org.slug)
    return signed


@shared_task(name="audit.checkpoint_org")
def audit_checkpoint_org(org_id: int) -> int | None:
    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        logger.warning("organization %s is gone; no checkpoint", org_id)
        return None
    return checkpoint_create(org=org).tree_size
