from django.urls import path

from projects import apis

urlpatterns = [
    path("runs/", apis.ProjectRunListApi.as_view(), name="project-run-list"),
    path("runs/<uuid:run_uuid>/", apis.ProjectRunDetailApi.as_view(), name="project-run-detail"),
    path("runs/<uuid:run_uuid>/logs", apis.ProjectRunLogsApi.as_view(), name="project-run-logs"),
    path("runs/<uuid:run_uuid>/cancel", apis.ProjectRunCancelApi.as_view(),
         name="project-run-cancel"),
]
