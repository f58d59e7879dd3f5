"""Browser pages of tracking (see tenancy/web.py for the access rules)."""

from django.urls import path

from tracking.views import artifacts, compare, experiments, run_detail, runs

urlpatterns = [
    path("experiments/", experiments.experiment_list, name="experiment-list"),
    path("experiments/<str:experiment_id>/", runs.experiment_runs, name="experiment-runs"),
    path("runs/<str:run_id>/", run_detail.run_detail, name="run-detail"),
    path("logged-models/<str:model_id>/", run_detail.logged_model, name="logged-model"),
    path("runs/<str:run_id>/artifact/", artifacts.run_artifact, name="run-artifact"),
    path("compare/", compare.run_compare, name="run-compare"),
    path("compare/metric-history/", compare.metric_history, name="metric-history"),
]
