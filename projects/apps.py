from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"

    def ready(self):
        from projects import jobs  # noqa: F401  (declares the job kind)
