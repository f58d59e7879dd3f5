"""Browser pages of the registry (see tenancy/web.py for the access rules)."""

from django.urls import path

from models_registry import inventory_views, views

urlpatterns = [
    path("models/", views.model_list, name="model-list"),
    path("models/<str:name>/", views.model_detail, name="model-detail"),
    path("models/<str:name>/versions/<str:version>/", views.model_version, name="model-version"),
    path("approvals/", views.approval_list, name="approvals-page"),
    path("inventory/", inventory_views.inventory_page, name="inventory-page"),
    path("inventory/export.csv", inventory_views.inventory_csv, name="inventory-page-csv"),
]
