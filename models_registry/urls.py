from django.urls import path

from models_registry import apis, inventory_apis

urlpatterns = [
    path("models/<str:name>/versions/<str:version>/predict", apis.VersionPredictApi.as_view(),
         name="model-version-predict"),
    path("models/<str:name>/aliases/<str:alias>/predict", apis.AliasPredictApi.as_view(),
         name="model-alias-predict"),
    path("models/<str:name>/versions/<str:version>/package", apis.PackageApi.as_view(),
         name="model-version-package"),
    path("models/<str:name>/versions/<str:version>/manifest", apis.ManifestApi.as_view(),
         name="model-version-manifest"),
    path("approvals/", apis.ApprovalListApi.as_view(), name="approval-list"),
    path("approvals/<int:approval_id>/", apis.ApprovalDetailApi.as_view(), name="approval-detail"),
    path("approvals/<int:approval_id>/approve", apis.ApprovalApproveApi.as_view(),
         name="approval-approve"),
    path("approvals/<int:approval_id>/reject", apis.ApprovalRejectApi.as_view(),
         name="approval-reject"),
    path("approvals/<int:approval_id>/cancel", apis.ApprovalCancelApi.as_view(),
         name="approval-cancel"),
    path("protected-aliases/", apis.ProtectedAliasListApi.as_view(), name="protected-alias-list"),
    path("protected-aliases/<int:protected_id>/", apis.ProtectedAliasDetailApi.as_view(),
         name="protected-alias-detail"),
    path("decisions/", apis.DecisionListApi.as_view(), name="decision-list"),
    path("decisions/<uuid:decision_id>/", apis.DecisionDetailApi.as_view(),
         name="decision-detail"),
    path("decisions/<uuid:decision_id>/review", apis.DecisionReviewApi.as_view(),
         name="decision-review"),
]

urlpatterns += [
    path("inventory/", inventory_apis.InventoryListApi.as_view(), name="inventory-list"),
    path("inventory/export.csv", inventory_apis.InventoryExportApi.as_view(),
         name="inventory-export"),
    path("inventory/<str:name>/", inventory_apis.InventoryDetailApi.as_view(),
         name="inventory-detail"),
    path("inventory/<str:name>/reviews", inventory_apis.InventoryReviewApi.as_view(),
         name="inventory-review"),
    path("inventory/<str:name>/validations/", inventory_apis.ValidationListApi.as_view(),
         name="inventory-validations"),
]
