"""Django admin: the compliance profile and the feature catalogue are edited here through the
same services as the API (audited); requests and generated versions are read-only."""

from django.contrib import admin

from reports import services
from reports.models import (
    PROFILE_TEXTS,
    ComplianceProfile,
    Disclosure,
    DisclosureRequest,
    FeatureDescription,
)
from tenancy.admin import ReadOnlyAdmin, ReadOnlyInline, ServiceAdminMixin


def _changed(form) -> dict:
    return {name: form.cleaned_data[name] for name in form.changed_data}


@admin.register(ComplianceProfile)
class ComplianceProfileAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["controller_name", "org", "authority_name", "updated_at"]
    fieldsets = [
        (None, {"fields": ["org", "controller_name", "controller_address", "dpo_contact"]}),
        ("Supervisory authority", {"fields": ["authority_name", "authority_address"]}),
        *[(name.replace("_", " ").capitalize(), {"fields": [f"{name}_de", f"{name}_en"]})
          for name in PROFILE_TEXTS],
    ]
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return ["org"] if obj else []

    def save_model(self, request, obj, form, change):
        data = _changed(form)
        data.pop("org", None)
        saved = self._call(request, services.compliance_profile_set, org=obj.org, data=data)
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False  # disclosures need one; change it instead


@admin.register(FeatureDescription)
class FeatureDescriptionAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["feature", "registered_model", "label_en", "label_de", "is_address_data"]
    list_filter = ["org", "is_address_data"]
    search_fields = ["feature", "label_en", "label_de", "registered_model__name"]
    list_select_related = ["registered_model"]
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return ["org", "registered_model", "feature"] if obj else ["org"]

    def save_model(self, request, obj, form, change):
        data = {k: v for k, v in _changed(form).items()
                if k not in ("registered_model", "feature")}
        saved = self._call(request, services.feature_description_set,
                           registered_model=obj.registered_model, feature=obj.feature, data=data)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        self._call(request, services.feature_description_delete, description=obj)


class VersionInline(ReadOnlyInline):
    model = Disclosure
    fields = ["version", "language", "status", "generated_at", "sha256", "anchor_seq"]


@admin.register(DisclosureRequest)
class DisclosureRequestAdmin(ReadOnlyAdmin):
    list_display = ["uuid", "org", "subject_name", "received_on", "due_on", "extended_until",
                    "language"]
    list_filter = ["org", "language"]
    search_fields = ["uuid", "subject_name", "subject_ref"]
    inlines = [VersionInline]


@admin.register(Disclosure)
class DisclosureAdmin(ReadOnlyAdmin):
    list_display = ["uuid", "org", "request", "version", "status", "generated_at"]
    list_filter = ["status", "org"]
