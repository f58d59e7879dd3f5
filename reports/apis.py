"""Compliance API: the organization's profile, each model's feature catalogue, disclosure
requests (`/api/v1/disclosures/`), their generations, reviews, deliveries and PDF downloads.
Everything here needs the compliance capability (compliance officers, admins, owners)."""

from django.http import FileResponse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.response import Response

from config.exceptions import ApplicationError
from models_registry import selectors as registry_selectors
from reports import services
from reports.completeness import profile_missing
from reports.models import (
    FEATURE_FIELDS,
    LANGUAGES,
    PROFILE_FIELDS,
    ComplianceProfile,
    DeliveryChannel,
    Disclosure,
    DisclosureRequest,
    DisclosureStatus,
    FeatureDescription,
    RequestState,
)
from tenancy.api import OrgApi
from tenancy.roles import Capability

COMPLIANCE = {method: Capability.COMPLIANCE for method in ("GET", "POST", "PUT", "PATCH",
                                                              "DELETE")}


class ComplianceApi(OrgApi):
    capabilities = COMPLIANCE

    def disclosure_requests(self):
        """The organization's requests, each with its versions and who acted on them."""
        return self.scoped(DisclosureRequest.objects.select_related("created_by")
                           .with_versions())


# A disclosure refused because it could not be complete (409), as config.exceptions writes it
# (a raw schema: a serializer cannot declare a field named "fields").
REFUSAL = {"type": "object", "required": ["code", "detail", "fields"], "properties": {
    "code": {"type": "string", "enum": ["conflict"]},
    "detail": {"type": "string", "description": "what is missing, in words"},
    "fields": {"type": "object", "properties": {
        "compliance_profile": {"type": "array", "items": {"type": "string"},
                               "description": 'the profile\'s empty fields, e.g. "purposes_en"'},
        "feature_catalogue": {"type": "array", "items": {"type": "string"},
                              "description": '"<model>: <feature> (not in the feature '
                                             'catalogue)" or "<model>: <feature> (meaning_de, '
                                             'source_de empty)"'}}}}}
INCOMPLETE = OpenApiResponse(
    REFUSAL, description="Refused, nothing written: the compliance profile or the feature "
    "catalogue of the subject's decisions lacks a text the disclosure needs in its language "
    "(docs/disclosures.md).")


class ProfileSerializer(serializers.ModelSerializer):
    missing_for_disclosure = serializers.SerializerMethodField(
        help_text="per language, the fields a disclosure in it still needs (all nine texts in "
                  "that language, besides the controller and the authority); [] = complete")

    class Meta:
        model = ComplianceProfile
        fields = [*PROFILE_FIELDS, "updated_at", "missing_for_disclosure"]
        read_only_fields = ["updated_at"]

    @extend_schema_field(serializers.DictField(child=serializers.ListField(
        child=serializers.CharField())))
    def get_missing_for_disclosure(self, profile) -> dict:
        return {language: profile_missing(profile, language) for language, _ in LANGUAGES}


class ComplianceProfileApi(ComplianceApi):
    @extend_schema(responses=ProfileSerializer, summary="The organization's compliance profile")
    def get(self, request):
        return Response(ProfileSerializer(self.get_scoped(ComplianceProfile)).data)

    @extend_schema(request=ProfileSerializer, responses=ProfileSerializer,
                   summary="Create the profile, or change the fields given")
    def patch(self, request):
        exists = self.scoped(ComplianceProfile).exists()
        data = ProfileSerializer(data=request.data, partial=exists)
        data.is_valid(raise_exception=True)
        profile = services.compliance_profile_set(org=self.org, actor=self.actor(),
                                                  data=dict(data.validated_data))
        return Response(ProfileSerializer(profile).data)


class FeatureSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeatureDescription
        fields = ["feature", *FEATURE_FIELDS]
        read_only_fields = ["feature"]


class FeatureListApi(ComplianceApi):
    capabilities = {**COMPLIANCE, "GET": Capability.READ}

    @extend_schema(responses=FeatureSerializer(many=True),
                   summary="A model's feature catalogue: what each input means, in de and en")
    def get(self, request, name: str):
        model = registry_selectors.registered_model_get(org=self.org, name=name)
        return Response(FeatureSerializer(model.features.order_by("feature"), many=True).data)


class FeatureDetailApi(ComplianceApi):
    @extend_schema(request=FeatureSerializer, responses=FeatureSerializer,
                   summary="Describe one input of the model (create, or change the fields given)")
    def put(self, request, name: str, feature: str):
        model = registry_selectors.registered_model_get(org=self.org, name=name)
        data = FeatureSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if len(feature) > 250:
            raise ApplicationError("A feature name has at most 250 characters.", kind="invalid",
                                   fields={"feature": ["too long"]})
        described = services.feature_description_set(
            registered_model=model, feature=feature, actor=self.actor(),
            data=dict(data.validated_data))
        return Response(FeatureSerializer(described).data)

    @extend_schema(responses={204: None}, summary="Remove one input's description")
    def delete(self, request, name: str, feature: str):
        model = registry_selectors.registered_model_get(org=self.org, name=name)
        services.feature_description_delete(
            description=self.get_scoped(FeatureDescription, registered_model=model,
                                        feature=feature), actor=self.actor())
        return Response(status=204)


class VersionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    requested_by = serializers.EmailField(source="requested_by.email", default=None)
    reviewed_by = serializers.EmailField(source="reviewed_by.email", default=None)
    delivered_by = serializers.EmailField(source="delivered_by.email", default=None,
                                          help_text="who recorded the delivery")

    class Meta:
        model = Disclosure
        fields = ["id", "version", "language", "status", "status_message", "attempt",
                  "requested_by", "created_at", "generated_at", "decision_count",
                  "content_sha256", "anchor_seq", "checkpoint_size", "sha256", "size",
                  "reviewed_by", "reviewed_at", "review_note", "delivered_by", "delivered_at",
                  "delivery_channel", "delivered_sha256", "delivery_reference"]


class RequestSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    deadline = serializers.DateField()
    state = serializers.ChoiceField(
        choices=RequestState.choices, read_only=True,
        help_text="how far the furthest version got; only `delivered` answers the request")
    delivered_version = serializers.IntegerField(
        source="delivered.version", default=None, read_only=True,
        help_text="the version whose delivery answered the request (the first delivered)")
    overdue = serializers.BooleanField(read_only=True,
                                       help_text="past its deadline with nothing delivered")
    versions = serializers.SerializerMethodField()
    created_by = serializers.EmailField(source="created_by.email", default=None)

    class Meta:
        model = DisclosureRequest
        fields = ["id", "subject_ref", "subject_name", "received_on", "due_on", "extended_until",
                  "extension_reason", "deadline", "state", "delivered_version", "overdue",
                  "identity_verification", "language", "created_by", "created_at", "versions"]

    @extend_schema_field(VersionSerializer(many=True))
    def get_versions(self, request) -> list:
        return VersionSerializer(request.versions, many=True).data


class DisclosureListApi(ComplianceApi):
    class InputSerializer(serializers.Serializer):
        subject = serializers.CharField(max_length=500, help_text="the customer identifier "
                                        "the decisions were recorded with; stored only as HMAC")
        subject_name = serializers.CharField(max_length=300)
        received_on = serializers.DateField()
        identity_verification = serializers.CharField(max_length=2000)
        language = serializers.ChoiceField(choices=LANGUAGES)
        generate = serializers.BooleanField(default=True,
                                            help_text="queue the first version at once")

    class FilterSerializer(serializers.Serializer):
        overdue = serializers.BooleanField(
            required=False, allow_null=True, default=None,
            help_text="true: past the deadline with nothing delivered; false: the others")

    @extend_schema(parameters=[FilterSerializer], responses=RequestSerializer(many=True),
                   summary="Disclosure requests with their deadlines, newest first")
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        found = self.disclosure_requests()
        if filters.validated_data["overdue"] is not None:
            late = DisclosureRequest.objects.overdue().values("pk")
            found = found.filter(pk__in=late) if filters.validated_data["overdue"] \
                else found.exclude(pk__in=late)
        return Response(RequestSerializer(found.order_by("-received_on", "-pk")[:500],
                                          many=True).data)

    @extend_schema(request=InputSerializer, responses={201: RequestSerializer, 409: INCOMPLETE},
                   summary="Record a customer's access request (and generate its PDF)",
                   description="Refused with 409 while the organization's compliance profile "
                   "or the feature catalogue of the subject's decisions is incomplete for the "
                   "request's language.")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data = dict(data.validated_data)
        generate = data.pop("generate")
        created = services.disclosure_request_create(org=self.org, actor=self.actor(), **data)
        if generate:
            services.disclosure_generate(request=created, actor=self.actor())
        return Response(RequestSerializer(self.disclosure_requests().get(pk=created.pk)).data,
                        status=201)


class DisclosureDetailApi(ComplianceApi):
    @extend_schema(responses=RequestSerializer, summary="One request and its versions")
    def get(self, request, request_uuid):
        return Response(RequestSerializer(
            self.get_scoped(self.disclosure_requests(), uuid=request_uuid)).data)


class DisclosureGenerateApi(ComplianceApi):
    class InputSerializer(serializers.Serializer):
        language = serializers.ChoiceField(choices=LANGUAGES, required=False, default="")

    @extend_schema(request=InputSerializer, responses={202: VersionSerializer, 409: INCOMPLETE},
                   summary="Generate a new version (old ones stay)",
                   description="Checked like a new request, in the version's language.")
    def post(self, request, request_uuid):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        disclosure = services.disclosure_generate(
            request=self.get_scoped(DisclosureRequest, uuid=request_uuid), actor=self.actor(),
            language=data.validated_data["language"])
        return Response(VersionSerializer(disclosure).data, status=202)


class DisclosureExtendApi(ComplianceApi):
    class InputSerializer(serializers.Serializer):
        extended_until = serializers.DateField()
        reason = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses=RequestSerializer,
                   summary="Extend the deadline by up to two months, with a reason")
    def post(self, request, request_uuid):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        extended = services.disclosure_request_extend(
            request=self.get_scoped(DisclosureRequest, uuid=request_uuid), actor=self.actor(),
            **data.validated_data)
        return Response(RequestSerializer(self.disclosure_requests().get(pk=extended.pk)).data)


class VersionStepApi(ComplianceApi):
    """A step of one version on its way to the customer (`service`); answers with the whole
    request."""

    service = None  # the step's service: reports.services.disclosure_review, ..._deliver

    def post(self, request, request_uuid, version: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        disclosure = self.get_scoped(Disclosure, request__uuid=request_uuid, version=version)
        self.service(disclosure=disclosure, actor=self.actor(), **data.validated_data)
        return Response(RequestSerializer(
            self.disclosure_requests().get(pk=disclosure.request_id)).data)


class ReviewInput(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True,
                                 help_text="what was checked")


class DeliverInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=DeliveryChannel.choices)
    sha256 = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True,
        help_text="SHA-256 of the file sent; must be the stored version's (checked against the "
                  "file in storage). Left out: the stored file's is recorded.")
    reference = serializers.CharField(max_length=300, required=False, default="",
                                      allow_blank=True, help_text="e.g. a tracking number")
    delivered_at = serializers.DateTimeField(required=False, default=None,
                                             help_text="when it was sent (default: now)")


@extend_schema_view(post=extend_schema(
    request=ReviewInput, responses=RequestSerializer,
    summary="Mark a ready version reviewed (four eyes)",
    description="By a compliance officer, admin or owner who did not ask for the version's "
    "generation (403 otherwise); 409 unless the version is READY and not reviewed yet."))
class DisclosureReviewApi(VersionStepApi):
    InputSerializer = ReviewInput
    service = staticmethod(services.disclosure_review)


@extend_schema_view(post=extend_schema(
    request=DeliverInput, responses=RequestSerializer,
    summary="Record a reviewed version's delivery: this answers the request",
    description="409 unless the version is READY, reviewed and not delivered yet, or when its "
    "stored file no longer has the SHA-256 recorded at generation; 400 naming the field for a "
    "wrong channel, hash or time."))
class DisclosureDeliverApi(VersionStepApi):
    InputSerializer = DeliverInput
    service = staticmethod(services.disclosure_deliver)


class DisclosurePdfApi(ComplianceApi):
    class FilterSerializer(serializers.Serializer):
        version = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(parameters=[FilterSerializer], responses={(200, "application/pdf"): bytes},
                   summary="Download the latest ready version (or ?version=N); audited")
    def get(self, request, request_uuid):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        found = self.get_scoped(DisclosureRequest, uuid=request_uuid)
        versions = found.disclosures.filter(status=DisclosureStatus.READY)
        if "version" in filters.validated_data:
            versions = versions.filter(version=filters.validated_data["version"])
        disclosure = versions.order_by("-version").first()
        if disclosure is None:
            raise ApplicationError("No ready version of this disclosure (yet).",
                                   kind="not_found")
        return FileResponse(services.disclosure_open(disclosure=disclosure, actor=self.actor()),
                            as_attachment=True, content_type="application/pdf",
                            filename=f"disclosure-{found.uuid}-v{disclosure.version}.pdf")
