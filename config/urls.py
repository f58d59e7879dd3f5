from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, metrics
from tracking.mlflow_api import artifacts as mlflow_artifacts
from tracking.mlflow_api import server

api_v1 = [
    path("", include("tenancy.urls")),
    path("audit/", include("audit.urls")),
    path("", include("models_registry.urls")),
    path("projects/", include("projects.urls")),
    path("", include("reports.urls")),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[]),
         name="docs"),
]

urlpatterns = [
    path("", include("tracking.urls")),
    path("api/2.0/mlflow-artifacts/", include(mlflow_artifacts.urls)),
    path("ajax-api/2.0/mlflow-artifacts/", include(mlflow_artifacts.urls)),
    path("version", server.version, name="mlflow-version"),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics.metrics, name="metrics"),
    # what browsers ask for on every page (and admin pages, API docs) without a <link rel=icon>;
    # lazy: the static files' manifest is read on the first request, not at import
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("ledgerflow/favicon.svg")),
         name="favicon"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("oidc/", include("tenancy.oidc")),  # single sign-on: mozilla-django-oidc's views
    path("", include("tenancy.web_urls")),
    # browser pages, each app its own
    path("", include("tracking.web_urls")),
    path("", include("models_registry.web_urls")),
    path("", include("projects.web_urls")),
    path("", include("audit.web_urls")),
    path("", include("reports.web_urls")),
]
