"""The registry's kind of job, for the job runner (config/jobs): packaging one model version,
on the `packaging` queue. Packaging is idempotent (each attempt writes under its own prefix),
so a lost or interrupted attempt is always worth another, up to
LEDGERFLOW_PACKAGING_MAX_ATTEMPTS; models_registry.packaging does the work."""

from audit.actors import Actor
from config.jobs.kinds import Kind, declare, org_of_model
from models_registry import packaging, services
from models_registry.models import ModelVersion

PACKAGING = declare(Kind(
    name=services.PACKAGING_JOB, queue="packaging",
    claim=lambda a: services.packaging_claim_within(version_pk=a.target, attempt=a.number,
                                                    actor=Actor.job(a)),
    work=packaging.package,
    retry=lambda a, reason: services.packaging_retry_within(
        version_pk=a.target, attempt=a.number, reason=reason, actor=Actor.job(a)),
    give_up=lambda a, reason: services.packaging_fail_within(
        version_pk=a.target, attempt=a.number, reason=reason, actor=Actor.job(a)),
    org_of=org_of_model(ModelVersion),
    lease_setting="LEDGERFLOW_PACKAGING_LEASE_SECONDS",
    attempts_setting="LEDGERFLOW_PACKAGING_MAX_ATTEMPTS"))
