from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "config.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        # Listed after every app that declares a kind, so their ready() ran already.
        from config.jobs.tasks import register_kinds

        register_kinds()
