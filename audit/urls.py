from django.urls import path

from audit import apis

urlpatterns = [
    path("events/", apis.AuditEventListApi.as_view(), name="audit-event-list"),
    path("events/<int:seq>/", apis.AuditEventDetailApi.as_view(), name="audit-event-detail"),
    path("verify/", apis.AuditVerifyApi.as_view(), name="audit-verify"),
    path("checkpoints/", apis.AuditCheckpointListApi.as_view(), name="audit-checkpoint-list"),
    path("checkpoints/<int:tree_size>/", apis.AuditCheckpointDetailApi.as_view(),
         name="audit-checkpoint-detail"),
    path("consistency/", apis.AuditConsistencyApi.as_view(), name="audit-consistency"),
    path("export/", apis.AuditExportApi.as_view(), name="audit-export"),
    path("public-key/", apis.AuditPublicKeyApi.as_view(), name="audit-public-key"),
]
