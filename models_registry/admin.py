"""Django admin for the registry. Registry content changes through the mlflow client and the
API (each write audited by models_registry.services), so here it is read-only; protected aliases
are managed here, through the same services."""

from django.contrib import admin
from django.core.exceptions import ValidationError

from config.exceptions import ApplicationError
from models_registry import services
from models_registry.models import (
    AliasApproval,
    Decision,
    InventoryEntry,
    ModelValidation,
    ModelVersion,
    ProtectedAlias,
    RegisteredModel,
)
from tenancy.admin import ReadOnlyAdmin, ReadOnlyInline, ServiceAdminMixin


class VersionInline(ReadOnlyInline):
    model = ModelVersion
    fields = ["version", "status", "current_stage", "package_digest", "deleted"]
    show_change_link = True


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "org", "deleted", "last_updated_timestamp"]
    list_filter = ["org", "deleted"]
    search_fields = ["name"]
    inlines = [VersionInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "org", "status", "current_stage", "package_digest", "deleted"]
    list_filter = ["org", "status", "current_stage"]
    search_fields = ["registered_model__name", "package_digest"]


@admin.register(AliasApproval)
class AliasApprovalAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "org", "registered_model", "alias", "model_version", "status",
                    "requested_by", "decided_by"]
    list_filter = ["org", "status"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["decision_id", "org", "created_at", "model_name", "model_version_number",
                    "outcome", "source"]
    list_filter = ["org", "source", "model_name"]
    search_fields = ["decision_id", "subject_ref"]
    date_hierarchy = "created_at"


@admin.register(ProtectedAlias)
class ProtectedAliasAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["alias", "org", "created_at"]
    list_filter = ["org"]
    fields = ["org", "alias"]
    actions = None

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        created = self._call(request, services.protected_alias_add, org=obj.org, alias=obj.alias)
        obj.pk = created.pk

    def delete_model(self, request, obj):
        self._call(request, services.protected_alias_remove, protected=obj)

    def service_check(self, request, obj, data):
        try:
            services.validate_alias(data.get("alias") or "")
        except ApplicationError as exc:
            raise ValidationError(exc.message) from exc
        if ProtectedAlias.objects.filter(org=data.get("org"), alias=data.get("alias")).exists():
            raise ValidationError(f"Alias '{data.get('alias')}' is already protected.")


@admin.register(InventoryEntry)
class InventoryEntryAdmin(ReadOnlyAdmin):
    """Read-only: entries change through models_registry/inventory.py (API), audited."""

    list_display = ["registered_model", "org", "risk_tier", "owner", "next_review_due"]
    list_filter = ["org", "risk_tier"]
    search_fields = ["registered_model__name"]


@admin.register(ModelValidation)
class ModelValidationAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "org", "validated_on", "outcome", "validated_by"]
    list_filter = ["org", "outcome"]
