"""Generating one disclosure version on a worker of the `reports` queue.

The job runner (config/jobs, reports/jobs.py) claims the version for one attempt; here: gather
its content (reports.content), record the content's SHA-256 in the audit trail and sign a
checkpoint that covers that event, render the PDF with the anchor on its cover
(reports.rendering), store it and record the file's SHA-256. A PDF cannot contain its own
hash, so the cover anchors the content it embeds, and the file hash follows in the trail one
event later.
"""

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import storages

from audit.actors import Actor
from audit.canonical import dumps as canonical_json
from audit.keys import public_verifier_key
from audit.services import checkpoint_create
from config.exceptions import ApplicationError
from reports import services
from reports.content import disclosure_content

STORAGE = services.STORAGE


def generate(attempt) -> str:
    """The job's work (a config.jobs Attempt): "ready", or "failed" for what the officer must
    fix. The worker's own trouble raises, for the job runner to retry."""
    from reports.models import Disclosure

    actor = Actor.job(attempt)
    pk, number = attempt.target, attempt.number
    disclosure = Disclosure.objects.select_related("request", "org").get(pk=pk)
    try:
        content = disclosure_content(disclosure)
        digest = hashlib.sha256(canonical_json(content)).hexdigest()
        event = services.disclosure_anchor(pk=pk, attempt=number, content_sha256=digest,
                                           decision_ids=[d["id"] for d in content["decisions"]],
                                           actor=actor)
        checkpoint = checkpoint_create(org=disclosure.org)
        pdf = _render(content, anchor_of(digest, event, checkpoint))
        name = storages[STORAGE].save(
            f"{disclosure.org_id}/{disclosure.request.uuid}/v{disclosure.version}-{number}.pdf",
            ContentFile(pdf))
        services.disclosure_finish(pk=pk, attempt=number, file_name=name,
                                   sha256=hashlib.sha256(pdf).hexdigest(), size=len(pdf),
                                   checkpoint_size=checkpoint.tree_size, actor=actor)
    except ApplicationError as exc:  # what the officer must fix (a missing profile, ...)
        services.disclosure_fail(pk=pk, attempt=number, message=exc.message, actor=actor)
        return "failed"
    return "ready"


def _render(content: dict, anchor: dict) -> bytes:
    from reports.rendering import render_disclosure_pdf

    return render_disclosure_pdf(content, anchor)


def anchor_of(digest: str, event, checkpoint) -> dict:
    """What a document's cover names (reports/CONTENT.md `anchor`): its content's SHA-256, the
    audit event that recorded it, and the signed checkpoint that covers that event."""
    return {"content_sha256": digest, "audit_seq": event.seq, "audit_event_hash": event.hash,
            "checkpoint": {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash,
                           "chain_hash": checkpoint.chain_hash,
                           "signed_at": checkpoint.created_at.isoformat().replace("+00:00", "Z"),
                           "key_name": checkpoint.key_name, "note": checkpoint.note,
                           "verifier_key": public_verifier_key()}}
