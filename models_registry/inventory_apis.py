"""Native API of the model risk inventory (models_registry/inventory.py).

Who may do what (tenancy/roles.py): everyone who reads the registry reads the inventory, as
of any date, and its CSV; members with WRITE (data scientists, admins, owners: the first line,
who build and run models) add and change entries and record periodic reviews; members with
APPROVE (compliance officers, admins, owners: the second line) record validations, and never
for a model they own in the inventory (SR 11-7's independence, checked by the service).

A route naming a model looks it up before reading the body: another organization's model is
a 404 whatever is sent, as a missing one is."""

import csv
import io

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from config.exceptions import ApplicationError
from models_registry import inventory, selectors
from models_registry.models import RiskTier, ValidationOutcome
from tenancy.api import OrgApi
from tenancy.roles import Capability


class AsOfSerializer(serializers.Serializer):
    as_of = serializers.DateField(required=False, help_text="YYYY-MM-DD: the inventory as it "
                                  "was at the end of that day, rebuilt from the audit trail; "
                                  "without it, as it is now")

    def validate_as_of(self, value):
        if value > timezone.localdate():
            raise serializers.ValidationError("The inventory of a future date is not known.")
        return value


def items_for(org, query_params) -> tuple[list, object]:
    data = AsOfSerializer(data=query_params)
    data.is_valid(raise_exception=True)
    as_of = data.validated_data.get("as_of")
    if as_of is None:
        return inventory.inventory_current(org), timezone.localdate()
    return inventory.inventory_as_of(org, as_of), as_of


class ValidationOutputSerializer(serializers.Serializer):
    validation_id = serializers.IntegerField()
    model = serializers.CharField()
    validated_by = serializers.EmailField()
    validated_on = serializers.DateField()
    scope = serializers.CharField()
    findings = serializers.CharField(allow_blank=True)
    outcome = serializers.ChoiceField(choices=ValidationOutcome.choices)
    evidence = serializers.ListField(child=serializers.DictField())


class EntryOutputSerializer(serializers.Serializer):
    model_id = serializers.IntegerField()
    model = serializers.CharField()
    owner = serializers.EmailField()
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices)
    intended_use = serializers.CharField()
    limitations = serializers.CharField(allow_blank=True)
    review_frequency_months = serializers.IntegerField()
    last_reviewed_on = serializers.DateField(allow_null=True)
    next_review_due = serializers.DateField()
    created_on = serializers.DateField()
    overdue = serializers.BooleanField()
    validations = serializers.IntegerField()
    latest_validation = ValidationOutputSerializer(allow_null=True)
    protected_aliases_blocked = serializers.BooleanField(
        help_text="the latest validation did not approve the model")


def entry_out(entry) -> dict:
    return inventory.inventory_item(entry).as_dict()


class InventoryListApi(OrgApi):
    class InputSerializer(serializers.Serializer):
        model = serializers.CharField(max_length=256)
        owner = serializers.EmailField(help_text="a member of the organization")
        risk_tier = serializers.ChoiceField(choices=RiskTier.choices)
        intended_use = serializers.CharField(max_length=10000)
        limitations = serializers.CharField(max_length=10000, required=False, default="",
                                            allow_blank=True)
        review_frequency_months = serializers.IntegerField(min_value=1, max_value=60)
        last_reviewed_on = serializers.DateField(required=False, allow_null=True, default=None)

    @extend_schema(parameters=[AsOfSerializer], responses=EntryOutputSerializer(many=True),
                   summary="The model risk inventory, now or as of a past date")
    def get(self, request):
        items, _ = items_for(self.org, request.query_params)
        return Response([item.as_dict() for item in items])

    @extend_schema(request=InputSerializer, responses={201: EntryOutputSerializer},
                   summary="Add a registered model to the inventory")
    def post(self, request):
        # the model first: another organization's is a 404 whatever else is sent
        name = request.data.get("model") if isinstance(request.data, dict) else None
        if isinstance(name, str):
            selectors.registered_model_get(org=self.org, name=name)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = selectors.registered_model_get(org=self.org, name=data.validated_data["model"])
        fields = {k: v for k, v in data.validated_data.items() if k != "model"}
        entry = inventory.inventory_entry_create(model=model, actor=self.actor(), **fields)
        return Response(entry_out(entry), status=201)


class InventoryExportApi(OrgApi):
    @extend_schema(parameters=[AsOfSerializer], responses={(200, "text/csv"): bytes},
                   summary="The inventory as CSV, now or as of a past date")
    def get(self, request):
        items, as_of = items_for(self.org, request.query_params)
        return csv_response(items, as_of, self.org.slug)


class InventoryDetailApi(OrgApi):
    class InputSerializer(serializers.Serializer):
        owner = serializers.EmailField(required=False)
        risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
        intended_use = serializers.CharField(max_length=10000, required=False)
        limitations = serializers.CharField(max_length=10000, required=False, allow_blank=True)
        review_frequency_months = serializers.IntegerField(min_value=1, max_value=60,
                                                           required=False)

    @extend_schema(responses=EntryOutputSerializer, summary="One model's inventory entry")
    def get(self, request, name: str):
        return Response(entry_out(inventory.inventory_entry_get(org=self.org, name=name)))

    @extend_schema(request=InputSerializer, responses=EntryOutputSerializer,
                   summary="Change an inventory entry")
    def patch(self, request, name: str):
        entry = inventory.inventory_entry_get(org=self.org, name=name)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data:
            raise ApplicationError("Nothing to change: send at least one field.",
                                   kind="invalid")
        entry = inventory.inventory_entry_update(entry=entry, actor=self.actor(),
                                                 **data.validated_data)
        return Response(entry_out(entry))


class InventoryReviewApi(OrgApi):
    class InputSerializer(serializers.Serializer):
        reviewed_on = serializers.DateField()

    @extend_schema(request=InputSerializer, responses=EntryOutputSerializer,
                   summary="Record the periodic review: the next one is due a cycle later")
    def post(self, request, name: str):
        entry = inventory.inventory_entry_get(org=self.org, name=name)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = inventory.inventory_review_record(
            entry=entry, reviewed_on=data.validated_data["reviewed_on"], actor=self.actor())
        return Response(entry_out(entry))


class ValidationListApi(OrgApi):
    capabilities = {"GET": Capability.READ, "POST": Capability.APPROVE}

    class InputSerializer(serializers.Serializer):
        validated_on = serializers.DateField()
        validated_by = serializers.EmailField(required=False, help_text="a member; default: you")
        scope = serializers.CharField(max_length=10000)
        findings = serializers.CharField(max_length=20000, required=False, default="",
                                         allow_blank=True)
        outcome = serializers.ChoiceField(choices=ValidationOutcome.choices)
        evidence = serializers.ListField(
            child=serializers.CharField(max_length=2200), required=False, default=list,
            max_length=inventory.MAX_EVIDENCE,
            help_text="artifact references: runs:/<run id>/<path>, mlflow-artifacts:/<path> or "
                      "<experiment id>/<run id>/artifacts/<path>; each is hashed when recorded")

    @extend_schema(responses=ValidationOutputSerializer(many=True),
                   summary="A model's validations, latest first")
    def get(self, request, name: str):
        selectors.registered_model_get(org=self.org, name=name)
        return Response([inventory.validation_state(v)
                         for v in inventory.validation_list(org=self.org, name=name)])

    @extend_schema(request=InputSerializer, responses={201: ValidationOutputSerializer},
                   summary="Record a validation (not approved blocks protected aliases)")
    def post(self, request, name: str):
        model = selectors.registered_model_get(org=self.org, name=name)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        validation = inventory.validation_record(model=model, actor=self.actor(),
                                                 **data.validated_data)
        return Response(inventory.validation_state(validation), status=201)


# --- CSV -----------------------------------------------------------------------------------

CSV_COLUMNS = ["model", "owner", "risk_tier", "intended_use", "limitations",
               "review_frequency_months", "last_reviewed_on", "next_review_due", "overdue",
               "validations", "latest_validation_outcome", "latest_validation_on",
               "latest_validated_by", "protected_aliases_blocked", "as_of"]


def _cell(value) -> str:
    """Text a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_response(items, as_of, slug: str) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row, latest = item.as_dict(), item.latest_validation or {}
        row.update(latest_validation_outcome=latest.get("outcome"),
                   latest_validation_on=latest.get("validated_on"),
                   latest_validated_by=latest.get("validated_by"), as_of=as_of.isoformat())
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = \
        f'attachment; filename="inventory-{slug}-{as_of.isoformat()}.csv"'
    return response

