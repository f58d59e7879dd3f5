"""Django admin for organizations, users, memberships and tokens.

Every save and delete goes through tenancy.services, so the admin validates and audits
exactly like the API does; nothing here writes a tenant row directly.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect

from audit.actors import Actor
from config.exceptions import ApplicationError
from tenancy import services
from tenancy.models import ApiToken, Membership, Organization, User
from tenancy.roles import Role

LAST_OWNER = "An organization must keep at least one owner."


def _is_last_owner(membership: Membership) -> bool:
    return membership.role == Role.OWNER and not Membership.objects.filter(
        org_id=membership.org_id, role=Role.OWNER).exclude(pk=membership.pk).exists()


admin.site.site_header = admin.site.site_title = "Ledgerflow administration"
admin.site.index_title = "Organizations, access and the audit trail"
# Permissions come from organization roles (tenancy.roles), not from Django groups.
admin.site.unregister(Group)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For what changes only through the API and the workers (each write audited there)."""

    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceAdminMixin:
    """Turns a service's ApplicationError into a form error instead of a 500."""

    # The admin wraps add/change/delete POSTs in transaction.atomic, but services open their
    # own durable transaction (STYLE.md section 4), which refuses to nest: run without it.
    @method_decorator(csrf_protect)
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return self._changeform_view(request, object_id, form_url, extra_context)

    @method_decorator(csrf_protect)
    def delete_view(self, request, object_id, extra_context=None):
        return self._delete_view(request, object_id, extra_context)

    def _call(self, request, service, **kwargs):
        try:
            return service(actor=Actor.admin(request), **kwargs)
        except ApplicationError as exc:
            raise ValidationError(exc.message) from exc

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        admin_self = self

        class ServiceForm(form_class):
            def _post_clean(self):
                super()._post_clean()
                if not self.errors:
                    try:
                        admin_self.service_check(request, self.instance, self.cleaned_data)
                    except ValidationError as exc:
                        self.add_error(None, exc)

        return ServiceForm

    def service_check(self, request, obj, data):
        """Dry checks that must fail as form errors (the service repeats them)."""


def _artifact_quotas():
    # The artifact quota is counted and changed where artifacts are stored (tracking owns
    # them); imported here, when used, so tenancy's own modules import no app above it.
    from tracking import artifacts

    return artifacts


@admin.register(Organization)
class OrganizationAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["slug", "name", "artifact_usage", "created_at"]
    search_fields = ["slug", "name"]
    fields = ["slug", "name", "artifact_quota_bytes", "artifact_usage", "created_at"]
    actions = ["recount_artifact_usage"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["artifact_usage", "created_at"]
        return ["slug", "artifact_usage", "created_at"]

    @admin.display(description="artifact storage")
    def artifact_usage(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        quota = obj.artifact_quota
        used = f"{filesizeformat(obj.artifact_bytes)} ({obj.artifact_bytes} bytes)"
        if not quota:
            return f"{used}, no quota"
        source = "its own" if obj.artifact_quota_bytes is not None else "the server's default"
        return f"{used} of {filesizeformat(quota)} ({quota} bytes, {source})"

    def service_check(self, request, obj, data):
        if obj.pk is None and Organization.objects.filter(slug=data.get("slug")).exists():
            raise ValidationError(f"Organization '{data.get('slug')}' already exists.")

    def save_model(self, request, obj, form, change):
        # Each change through its service, audited with the value it replaces (read from the
        # database: `obj` carries the form's values already).
        if change:
            if "name" in form.changed_data:
                current = Organization.objects.get(pk=obj.pk)
                self._call(request, services.organization_update, org=current, name=obj.name)
        else:
            created = self._call(request, services.organization_create, slug=obj.slug,
                                 name=obj.name)
            obj.pk = created.pk
        if "artifact_quota_bytes" in form.changed_data:
            self._call(request, _artifact_quotas().artifact_quota_set, org=obj,
                       quota_bytes=obj.artifact_quota_bytes)

    @admin.action(description="Recount artifact storage of selected organizations")
    def recount_artifact_usage(self, request, queryset):
        for org in queryset:
            counted = _artifact_quotas().artifact_usage_recount(org=org,
                                                                actor=Actor.admin(request))
            self.message_user(request, f"{org.slug}: {filesizeformat(counted)} "
                                       f"({counted} bytes) of artifacts.")

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail refers to organizations forever


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent, changed only through the services elsewhere."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class MembershipInline(ReadOnlyInline):
    model = Membership
    fk_name = "user"
    fields = ["org", "role", "created_at"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(Membership)
class MembershipAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["user", "org", "role", "kind", "created_at"]
    list_filter = ["role", "kind", "org"]
    search_fields = ["user__email", "org__slug"]
    autocomplete_fields = ["user"]
    actions = None

    def get_readonly_fields(self, request, obj=None):
        # service accounts are added by `manage.py service_account_add` or the API
        return ["org", "user", "kind", "created_at"] if obj else ["kind", "created_at"]

    def service_check(self, request, obj, data):
        if obj.pk is None and Membership.objects.filter(org=data.get("org"),
                                                        user=data.get("user")).exists():
            raise ValidationError("This user is already a member of that organization.")
        if obj.pk is not None and obj.role != Role.OWNER \
                and _is_last_owner(Membership.objects.get(pk=obj.pk)):
            raise ValidationError(LAST_OWNER)

    @method_decorator(csrf_protect)
    def delete_view(self, request, object_id, extra_context=None):
        # Refuse before Django logs the deletion and reports it as done; the service would
        # refuse too, but only after that (delete_model still catches a racing refusal).
        membership = self.get_object(request, object_id)
        if request.method == "POST" and membership is not None and _is_last_owner(membership):
            self.message_user(request, LAST_OWNER, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:tenancy_membership_change",
                                                args=[membership.pk]))
        return super().delete_view(request, object_id, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            current = Membership.objects.get(pk=obj.pk)
            self._call(request, services.membership_update, membership=current, role=obj.role)
        else:
            created = self._call(request, services.membership_add, org=obj.org,
                                 email=obj.user.email, role=obj.role)
            obj.pk = created.pk

    def delete_model(self, request, obj):
        try:
            self._call(request, services.membership_remove, membership=obj)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["org", "user", "name", "read_only", "expires_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["prefix", "name", "user", "org", "read_only", "state", "created_at",
                    "expires_at"]
    list_filter = ["read_only", "org"]
    search_fields = ["lookup", "name", "user__email"]
    autocomplete_fields = ["user"]
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["prefix", "org", "user", "name", "read_only", "expires_at", "state",
                "created_at", "created_by", "revoked_at"]

    def service_check(self, request, obj, data):
        if obj.pk is None:  # tokens are personal: whose this admin may make
            self._call(request, services.token_mint_check, org=data.get("org"),
                       user=data.get("user"))
        expires_at = data.get("expires_at")
        if obj.pk is None and expires_at is not None and expires_at <= timezone.now():
            raise ValidationError("The expiry must lie in the future.")

    def save_model(self, request, obj, form, change):
        if change:
            return  # tokens are immutable; revoke and create a new one instead
        token, raw = self._call(request, services.token_create, org=obj.org, user=obj.user,
                                name=obj.name, read_only=obj.read_only, expires_at=obj.expires_at)
        obj.pk, request._ledgerflow_raw_token = token.pk, raw

    def response_add(self, request, obj, post_url_continue=None):
        # Show the raw value on this one response; it is stored nowhere, not even in messages.
        context = {**self.admin_site.each_context(request), "token": obj,
                   "raw": request._ledgerflow_raw_token, "opts": self.model._meta,
                   "title": "Token created"}
        return TemplateResponse(request, "admin/tenancy/apitoken/created.html", context)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the audit trail keeps the token's history

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        for token in queryset:
            services.token_revoke(token=token, actor=Actor.admin(request))
        self.message_user(request, f"Revoked {queryset.count()} token(s).")
