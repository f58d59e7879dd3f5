from django.apps import AppConfig


class ModelsRegistryConfig(AppConfig):
    name = "models_registry"
    verbose_name = "Model registry"

    def ready(self):
        from models_registry import jobs, mlflow_api  # noqa: F401  (the job kind, the RPCs)
        from models_registry.packages import mount_packages

        mount_packages()
