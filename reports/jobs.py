"""The reports app's kind of job, for the job runner (config/jobs): generating one disclosure
version, on the `reports` queue. A lost or interrupted attempt is queued again, up to
LEDGERFLOW_REPORT_MAX_ATTEMPTS; reports.generation does the work."""

from audit.actors import Actor
from config.jobs.kinds import Kind, declare, org_of_model
from reports import generation, services
from reports.models import Disclosure

DISCLOSURE = declare(Kind(
    name=services.JOB, queue="reports",
    claim=lambda a: services.disclosure_claim_within(pk=a.target, attempt=a.number,
                                                     actor=Actor.job(a)),
    work=generation.generate,
    retry=lambda a, reason: services.disclosure_end_within(
        pk=a.target, attempt=a.number, message=reason, actor=Actor.job(a), again=True),
    give_up=lambda a, reason: services.disclosure_end_within(
        pk=a.target, attempt=a.number, message=reason, actor=Actor.job(a)),
    org_of=org_of_model(Disclosure),
    lease_setting="LEDGERFLOW_REPORT_LEASE_SECONDS",
    attempts_setting="LEDGERFLOW_REPORT_MAX_ATTEMPTS"))
