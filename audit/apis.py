"""Audit trail API for compliance officers and auditors (capability `audit`)."""

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import keys, selectors
from audit.models import AuditCheckpoint, AuditEvent
from audit.services import audit_export_lines, audit_verify_org, checkpoint_create
from config.exceptions import ApplicationError
from tenancy.api import OrgApi
from tenancy.roles import Capability

AUDIT = {"GET": Capability.AUDIT, "POST": Capability.AUDIT}


class EventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["seq", "created_at", "actor_kind", "actor_label", "action", "target_type",
                  "target_id", "target_label", "before", "after", "request_id", "client_ip",
                  "prev_hash", "hash"]


class CheckpointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditCheckpoint
        fields = ["tree_size", "root_hash", "chain_hash", "created_at", "key_name", "note"]


class InclusionProofSerializer(serializers.Serializer):
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf = serializers.CharField(help_text="the event's chain hash, hex")
    path = serializers.ListField(child=serializers.CharField())
    root_hash = serializers.CharField()
    checkpoint = serializers.CharField(allow_null=True, help_text="signed note of that size")


class VerdictSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    events = serializers.IntegerField()
    checkpoints = serializers.IntegerField()
    first_bad_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)


class AuditEventListApi(OrgApi):
    capabilities = AUDIT

    class FilterSerializer(serializers.Serializer):
        action = serializers.CharField(required=False)
        actor = serializers.CharField(required=False, help_text="substring of the actor label")
        target_type = serializers.CharField(required=False)
        target_id = serializers.CharField(required=False)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)
        after_seq = serializers.IntegerField(required=False, min_value=0, default=0)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)

    class PageSerializer(serializers.Serializer):
        results = EventOutputSerializer(many=True)
        next_after_seq = serializers.IntegerField(allow_null=True)

    @extend_schema(parameters=[FilterSerializer], responses=PageSerializer,
                   summary="List events, oldest first; page with after_seq")
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        limit = data.pop("limit")
        events = list(selectors.event_list(org=self.org, **data)[: limit + 1])
        more = len(events) > limit
        events = events[:limit]
        return Response({"results": EventOutputSerializer(events, many=True).data,
                         "next_after_seq": events[-1].seq if more else None})


class AuditEventDetailApi(OrgApi):
    capabilities = AUDIT

    class OutputSerializer(serializers.Serializer):
        event = EventOutputSerializer()
        inclusion_proof = InclusionProofSerializer()

    @extend_schema(responses=OutputSerializer,
                   summary="One event with its Merkle inclusion proof (RFC 9162)")
    def get(self, request, seq: int):
        event = self.get_scoped(AuditEvent, seq=seq)
        proof = selectors.event_inclusion_proof(org=self.org, seq=seq)
        return Response({"event": EventOutputSerializer(event).data, "inclusion_proof": proof})


class AuditVerifyApi(OrgApi):
    capabilities = AUDIT

    @extend_schema(request=None, responses=VerdictSerializer,
                   summary="Recompute the chain and check the signed checkpoints")
    def post(self, request):
        verdict = audit_verify_org(self.org)
        return Response(verdict.as_dict())

    @extend_schema(responses=VerdictSerializer, summary="Same as POST")
    def get(self, request):
        return self.post(request)


FORMATS = ("json", "note")
FORMAT_PARAMETER = OpenApiParameter(
    "format", enum=list(FORMATS),
    description="`note` answers with the signed checkpoint note itself (text/plain), the file "
                "`python -m audit.offline --checkpoint` reads")


class CheckpointFormatMixin:
    # `?format=json|note` on the checkpoint endpoints. DRF reads ?format= as a renderer
    # override and answers a bare 404 for any it has no renderer for ("note" included); here
    # negotiation falls back to JSON (for errors) and get() names a bad value in a 400.

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(
            request, force=force or self.wanted_format(request) != "json")

    @staticmethod
    def wanted_format(request) -> str:
        return request.query_params.get("format") or "json"

    def check_format(self, request) -> str:
        wanted = self.wanted_format(request)
        if wanted not in FORMATS:
            raise ApplicationError(
                f"Unknown format {wanted!r}: use format=json or format=note.",
                fields={"format": [f"one of {', '.join(FORMATS)}"]})
        return wanted

    def note_response(self, checkpoint: AuditCheckpoint) -> HttpResponse:
        response = HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")
        name = f"{self.org.slug}-checkpoint-{checkpoint.tree_size}.txt"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class AuditCheckpointListApi(CheckpointFormatMixin, OrgApi):
    capabilities = AUDIT

    @extend_schema(parameters=[FORMAT_PARAMETER],
                   responses={200: CheckpointOutputSerializer(many=True),
                              (200, "text/plain"): str},
                   summary="Signed checkpoints, newest first; ?format=note downloads the "
                           "latest one's signed note")
    def get(self, request):
        checkpoints = self.scoped(AuditCheckpoint).order_by("-tree_size")
        if self.check_format(request) == "note":
            latest = checkpoints.first()
            if latest is None:
                raise ApplicationError("No checkpoint has been signed yet: POST to this URL "
                                       "signs one.", kind="not_found")
            return self.note_response(latest)
        return Response(CheckpointOutputSerializer(checkpoints, many=True).data)

    @extend_schema(request=None, responses={201: CheckpointOutputSerializer},
                   summary="Sign a checkpoint of the log as it is now")
    def post(self, request):
        checkpoint = checkpoint_create(org=self.org)
        return Response(CheckpointOutputSerializer(checkpoint).data, status=201)


class AuditCheckpointDetailApi(CheckpointFormatMixin, OrgApi):
    capabilities = AUDIT

    @extend_schema(parameters=[FORMAT_PARAMETER],
                   responses={200: CheckpointOutputSerializer, (200, "text/plain"): str},
                   summary="One checkpoint; ?format=note downloads the signed note itself")
    def get(self, request, tree_size: int):
        wanted = self.check_format(request)
        checkpoint = self.get_scoped(AuditCheckpoint, tree_size=tree_size)
        if wanted == "note":
            return self.note_response(checkpoint)
        return Response(CheckpointOutputSerializer(checkpoint).data)


class AuditConsistencyApi(OrgApi):
    capabilities = AUDIT

    class InputSerializer(serializers.Serializer):
        old_size = serializers.IntegerField(min_value=1)
        new_size = serializers.IntegerField(min_value=1)

    class OutputSerializer(serializers.Serializer):
        old_size = serializers.IntegerField()
        new_size = serializers.IntegerField()
        old_root = serializers.CharField()
        new_root = serializers.CharField()
        path = serializers.ListField(child=serializers.CharField())
        old_checkpoint = serializers.CharField(allow_null=True)
        new_checkpoint = serializers.CharField(allow_null=True)

    @extend_schema(parameters=[InputSerializer], responses=OutputSerializer,
                   summary="Consistency proof between two tree sizes (RFC 9162)")
    def get(self, request):
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        old, new = data.validated_data["old_size"], data.validated_data["new_size"]
        if old > new:
            raise ApplicationError("old_size must not exceed new_size.",
                                   fields={"old_size": ["greater than new_size"]})
        return Response(selectors.consistency(org=self.org, old_size=old, new_size=new))


class AuditExportApi(OrgApi):
    capabilities = AUDIT

    @extend_schema(responses={(200, "application/x-ndjson"): str},
                   summary="Stream the whole trail as JSON Lines with its checkpoints")
    def get(self, request):
        response = StreamingHttpResponse(audit_export_lines(self.org),
                                         content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{self.org.slug}-audit.jsonl"'
        return response


class AuditPublicKeyApi(APIView):
    """The checkpoint signing key is public: anyone may fetch it to verify offline."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        key_name = serializers.CharField()
        public_key_pem = serializers.CharField()
        verifier_key = serializers.CharField()
        retired_verifier_keys = serializers.ListField(
            child=serializers.CharField(),
            help_text="keys that signed checkpoints before a rotation (verifier key strings)")
        algorithm = serializers.CharField()

    @extend_schema(responses=OutputSerializer,
                   summary="Public key that signs checkpoints (PEM and C2SP verifier key)")
    def get(self, request):
        return Response({"key_name": keys.key_name(), "public_key_pem": keys.public_key_pem(),
                         "verifier_key": keys.public_verifier_key(),
                         "retired_verifier_keys": keys.retired_verifier_keys(),
                         "algorithm": "Ed25519"})
