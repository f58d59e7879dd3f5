from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"

    def ready(self):
        from reports import jobs  # noqa: F401  (declares the job kind)
