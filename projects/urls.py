from django.urls import path

from projects import apis

urlpatterns = [
    path("runs/", apis.ProjectRunListApi.as_view(), name="project-run-list"),
    path("runs/<uuid:run_uuid>/", apis.ProjectRunDetailApi.as_view(), name="project-run-detail"),
    path("runs/<uuid:run_uuid>/logs", apis.ProjectRunLogsApi.as_view(), name="project-run-logs"),
    path("runs/<uuid:run_uuid>/cancel", apis.ProjectRunCancelApi.as_view(),
         name="project-run-cancel"),
    path("workflows/", apis.WorkflowListApi.as_view(), name="workflow-list"),
    path("workflows/<uuid:workflow_uuid>/", apis.WorkflowDetailApi.as_view(),
         name="workflow-detail"),
    path("workflows/<uuid:workflow_uuid>/cancel", apis.WorkflowCancelApi.as_view(),
         name="workflow-cancel"),
]
