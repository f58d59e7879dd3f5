"""Generating one disclosure version on a worker of the `reports` queue.

Claim the version, gather its content (reports.content), record the content's SHA-256 in the
audit trail and sign a checkpoint that covers that event, render the PDF with the anchor on
its cover (reports.rendering), store it and record the file's SHA-256. A PDF cannot contain
its own hash, so the cover anchors the content it embeds, and the file hash follows in the
trail one event later.
"""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.core.files.storage import storages

from audit.actors import Actor
from audit.canonical import dumps as canonical_json
from audit.keys import public_verifier_key
from audit.services import checkpoint_create
from config.exceptions import ApplicationError
from reports import services
from reports.content import disclosure_content

logger = logging.getLogger(__name__)
STORAGE = services.STORAGE


def generate(pk: int, task_id: str = "") -> str:
    actor = Actor.task("reports.generate", task_id)
    claimed = services.disclosure_claim(pk=pk, actor=actor)
    if claimed is None:
        return "skipped"
    disclosure, attempt = claimed
    try:
        content = disclosure_content(disclosure)
        digest = hashlib.sha256(canonical_json(content)).hexdigest()
        event = services.disclosure_anchor(pk=pk, attempt=attempt, content_sha256=digest,
                                           decision_ids=[d["id"] for d in content["decisions"]],
                                           actor=actor)
        checkpoint = checkpoint_create(org=disclosure.org)
        pdf = _render(content, _anchor(digest, event, checkpoint))
        request = disclosure.request
        name = storages[STORAGE].save(
            f"{disclosure.org_id}/{request.uuid}/v{disclosure.version}-{attempt}.pdf",
            ContentFile(pdf))
        services.disclosure_finish(pk=pk, attempt=attempt, file_name=name,
                                   sha256=hashlib.sha256(pdf).hexdigest(), size=len(pdf),
                                   checkpoint_size=checkpoint.tree_size, actor=actor)
    except ApplicationError as exc:  # what the officer must fix (a missing profile, ...)
        services.disclosure_fail(pk=pk, attempt=attempt, message=exc.message, actor=actor)
        return "failed"
    except Exception as exc:  # the worker's own trouble: tried again, a few times
        logger.exception("disclosure %s failed", pk)
        services.disclosure_fail(pk=pk, attempt=attempt, message=f"{type(exc).__name__}: {exc}",
                                 actor=actor, retry=True)
        return "retry"
    return "ready"


def _render(content: dict, anchor: dict) -> bytes:
    from reports.rendering import render_disclosure_pdf

    return render_disclosure_pdf(content, anchor)


def _anchor(digest: str, event, checkpoint) -> dict:
    return {"content_sha256": digest, "audit_seq": event.seq, "audit_event_hash": event.hash,
            "checkpoint": {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash,
                           "chain_hash": checkpoint.chain_hash,
                           "signed_at": checkpoint.created_at.isoformat().replace("+00:00", "Z"),
                           "key_name": checkpoint.key_name, "note": checkpoint.note,
                           "verifier_key": public_verifier_key()}}
