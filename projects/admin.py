"""Django admin for project runs and workflows: read-only (they change through the API and the
workers, each change audited), with a cancel action that goes through the same service."""

from django.contrib import admin, messages

from audit.actors import Actor
from config.exceptions import ApplicationError
from projects import services
from projects.models import ProjectRun, Workflow
from tenancy.admin import ReadOnlyAdmin, ReadOnlyInline


@admin.register(ProjectRun)
class ProjectRunAdmin(ReadOnlyAdmin):
    list_display = ["uuid", "org", "entry_point", "status", "source_kind", "git_url",
                    "workflow", "step_name", "attempt", "created_at", "ended_at"]
    list_filter = ["status", "org", "source_kind", "env_manager"]
    search_fields = ["uuid", "git_url", "entry_point", "run__run_uuid"]
    list_select_related = ["org", "workflow"]
    actions = ["cancel"]

    @admin.action(description="Cancel the selected runs (a workflow step: its workflow)")
    def cancel(self, request, queryset):
        for project_run in queryset:
            try:
                services.project_run_cancel(project_run=project_run, actor=Actor.admin(request))
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.WARNING)


class StepInline(ReadOnlyInline):
    model = ProjectRun
    fields = ["step_index", "step_name", "entry_point", "status", "status_message"]


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["uuid", "org", "name", "status", "created_at", "ended_at"]
    list_filter = ["status", "org"]
    search_fields = ["uuid", "name"]
    inlines = [StepInline]
