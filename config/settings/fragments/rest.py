"""Django REST framework and the OpenAPI schema."""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.TokenAuthentication",
        "tenancy.authentication.OrgSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.HasCapability"],
    "DEFAULT_THROTTLE_CLASSES": ["tenancy.throttling.RequestRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Ledgerflow API",
    "DESCRIPTION": (
        "Native API of Ledgerflow. Authenticate with `Authorization: Bearer <token>` or HTTP "
        "Basic (email + token). Every request acts in the token's organization."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Assets from drf-spectacular-sidecar: the machines that run us may have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Several models have a `status`; each choice set gets its own, stable name.
    "ENUM_NAME_OVERRIDES": {
        "ProjectRunStatusEnum": "projects.models.ProjectRunStatus",
        "DisclosureStatusEnum": "reports.models.DisclosureStatus",
        "DisclosureRequestStateEnum": "reports.models.RequestState",
        "DeliveryChannelEnum": "reports.models.DeliveryChannel",
        # an API token's state (tenancy/apis.py), named as before requests had a state too
        "StateEnum": ["active", "expired", "revoked"],
        "ApprovalStatusEnum": "models_registry.models.ApprovalStatus",
        "VersionStatusEnum": "models_registry.models.VersionStatus",
    },
}
