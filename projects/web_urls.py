"""Browser pages of project runs (see tenancy/web.py for the access rules)."""

from django.urls import path

from projects import views

urlpatterns = [
    path("projects/", views.project_list, name="project-list"),
    path("projects/runs/<uuid:run_uuid>/", views.project_run, name="project-run"),
    path("projects/workflows/<uuid:workflow_uuid>/", views.project_workflow,
         name="project-workflow"),
]
