from django.apps import AppConfig
from django.db.backends.signals import connection_created

from config import pgarrays


def _register_packed_arrays(sender, connection, **kwargs):
    if connection.vendor == "postgresql":
        pgarrays.register(connection.connection.adapters)


class TrackingConfig(AppConfig):
    name = "tracking"

    def ready(self):
        # log-batch binds its points as binary arrays (config.pgarrays) on every connection.
        connection_created.connect(_register_packed_arrays, dispatch_uid="ledgerflow-pgarrays")
