"""Server-level endpoints: server-info (what the client may use) and version."""

import mlflow.version
from django.http import HttpResponse

from tracking.mlflow_api.views import Context, rpc


@rpc("GET", "server-info")
def server_info(ctx: Context, req):
    # Workspaces are our organizations: a client may name its org's slug in X-MLFLOW-WORKSPACE.
    return {"store_type": "SqlStore", "workspaces_enabled": False,
            "multipart_uploads_enabled": False, "ledgerflow": {"organization": ctx.org.slug}}


def version(request):
    return HttpResponse(mlflow.version.VERSION, content_type="text/plain")
