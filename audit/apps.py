from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        # post_migrate fires once per app after all migrations ran; hook only our own.
        post_migrate.connect(_install_guards, sender=self, dispatch_uid="ledgerflow-audit-guards")


def _install_guards(sender, using="default", **kwargs):
    from audit.guards import install_audit_guards

    install_audit_guards(using=using)
