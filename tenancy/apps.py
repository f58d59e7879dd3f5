from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Organizations and access"

    def ready(self):
        from axes.models import AccessAttempt
        from axes.signals import user_locked_out
        from django.db.models.signals import post_delete

        import config.schema  # noqa: F401  (registers the OpenAPI authentication extensions)
        from tenancy.lockouts import on_attempt_deleted, on_locked_out

        user_locked_out.connect(on_locked_out, dispatch_uid="ledgerflow-lockout")
        post_delete.connect(on_attempt_deleted, sender=AccessAttempt,
                            dispatch_uid="ledgerflow-lockout-lifted")
