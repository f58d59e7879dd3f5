from django.apps import AppConfig


class ModelsRegistryConfig(AppConfig):
    name = "models_registry"
    verbose_name = "Model registry"

    def ready(self):
        from models_registry import mlflow_api  # noqa: F401  (registers the RPCs)
        from models_registry.packages import mount_packages

        mount_packages()
