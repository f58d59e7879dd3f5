from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Organizations and access"

    def ready(self):
        from axes.models import AccessAttempt
        from axes.signals import user_locked_out
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_delete, post_migrate

        import config.schema  # noqa: F401  (registers the OpenAPI authentication extensions)
        from config.scope import forget_scope
        from tenancy.dbroles import grant_to_service
        from tenancy.lockouts import on_attempt_deleted, on_locked_out
        from tenancy.rls import install_row_security

        user_locked_out.connect(on_locked_out, dispatch_uid="ledgerflow-lockout")
        # row-level security (PostgreSQL): policies after every migrate; no scope in a new session
        post_migrate.connect(install_row_security, sender=self, dispatch_uid="ledgerflow-rls")
        post_migrate.connect(grant_to_service, sender=self, dispatch_uid="ledgerflow-grants")
        connection_created.connect(forget_scope, dispatch_uid="ledgerflow-rls-session")
        post_delete.connect(on_attempt_deleted, sender=AccessAttempt,
                            dispatch_uid="ledgerflow-lockout-lifted")
