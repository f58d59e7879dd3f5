from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Organizations and access"

    def ready(self):
        import config.schema  # noqa: F401  (registers the OpenAPI authentication extensions)
