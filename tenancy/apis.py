from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from tenancy.api import OrgApi
from tenancy.models import ApiToken, MemberKind, Membership
from tenancy.roles import Capability, Role
from tenancy.services import (
    membership_add,
    membership_remove,
    membership_update,
    service_account_add,
    token_create,
    token_revoke,
)


class MeApi(OrgApi):
    class OutputSerializer(serializers.Serializer):
        class UserSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            email = serializers.EmailField()
            name = serializers.CharField(source="get_full_name")

        class OrganizationSerializer(serializers.Serializer):
            slug = serializers.CharField()
            name = serializers.CharField()

        user = UserSerializer()
        organization = OrganizationSerializer(source="org")
        role = serializers.CharField()
        capabilities = serializers.ListField(child=serializers.CharField())
        token = serializers.CharField(allow_null=True, help_text="Prefix of the token in use")
        read_only = serializers.BooleanField()

    @extend_schema(responses=OutputSerializer, summary="Who am I, where, with which role")
    def get(self, request):
        access = self.access
        data = {
            "user": request.user,
            "org": access.org,
            "role": access.role,
            "capabilities": sorted(c.value for c in Capability if access.can(c)),
            "token": access.token.prefix if access.token else None,
            "read_only": bool(access.token and access.token.read_only),
        }
        return Response(self.OutputSerializer(data).data)


class MemberOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.get_full_name")
    role = serializers.ChoiceField(choices=Role.choices)
    kind = serializers.ChoiceField(choices=MemberKind.choices,
                                   help_text="person, or service (an account for automation)")
    created_at = serializers.DateTimeField()


class MemberListApi(OrgApi):
    capabilities = {"GET": Capability.ADMIN_READ, "POST": Capability.ADMIN}

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        role = serializers.ChoiceField(choices=Role.choices)
        name = serializers.CharField(required=False, default="", max_length=150)

    @extend_schema(responses=MemberOutputSerializer(many=True), summary="Members (admins)")
    def get(self, request):
        members = self.scoped(Membership).select_related("user")
        return Response(MemberOutputSerializer(members, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: MemberOutputSerializer},
                   summary="Add a member (the user is created when new)")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = membership_add(org=self.org, actor=self.actor(),
                                actor_membership=self.access.membership, **data.validated_data)
        return Response(MemberOutputSerializer(member).data, status=status.HTTP_201_CREATED)


class ServiceAccountListApi(OrgApi):
    """Members for automation: never an owner, never a party to a four-eyes approval, with
    tokens that the organization's admins create (POST /api/v1/tokens/ with its `user`)."""

    capabilities = {"GET": Capability.ADMIN_READ, "POST": Capability.ADMIN}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=40, help_text="lower-case letters, digits, "
                                     "inner hyphens; its email is <name>@<org>.service.invalid")
        role = serializers.ChoiceField(choices=Role.choices, help_text="never owner")

    @extend_schema(responses=MemberOutputSerializer(many=True), summary="Service accounts")
    def get(self, request):
        accounts = self.scoped(Membership).filter(kind=MemberKind.SERVICE).select_related("user")
        return Response(MemberOutputSerializer(accounts, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: MemberOutputSerializer},
                   summary="Add a service account (a member for automation)")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = service_account_add(org=self.org, actor=self.actor(),
                                     actor_membership=self.access.membership,
                                     **data.validated_data)
        return Response(MemberOutputSerializer(member).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(OrgApi):
    capabilities = {"GET": Capability.ADMIN_READ, "PATCH": Capability.ADMIN,
                    "DELETE": Capability.ADMIN}

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

    def _member(self, member_id):
        return self.get_scoped(Membership.objects.select_related("user", "org"), pk=member_id)

    @extend_schema(responses=MemberOutputSerializer, summary="One member")
    def get(self, request, member_id: int):
        return Response(MemberOutputSerializer(self._member(member_id)).data)

    @extend_schema(request=InputSerializer, responses=MemberOutputSerializer,
                   summary="Change a member's role")
    def patch(self, request, member_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = membership_update(membership=self._member(member_id), actor=self.actor(),
                                   actor_membership=self.access.membership,
                                   role=data.validated_data["role"])
        return Response(MemberOutputSerializer(member).data)

    @extend_schema(responses={204: None}, summary="Remove a member and revoke their tokens")
    def delete(self, request, member_id: int):
        membership_remove(membership=self._member(member_id), actor=self.actor(),
                          actor_membership=self.access.membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    user = serializers.EmailField(source="user.email")
    read_only = serializers.BooleanField()
    state = serializers.ChoiceField(choices=["active", "expired", "revoked"])
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class TokenCreatedSerializer(TokenOutputSerializer):
    token = serializers.CharField(help_text="The raw token. Shown this once; store it now.")


class TokenScopeMixin:
    """Admins manage every token of the organization; others only their own."""

    def tokens(self):
        tokens = self.scoped(ApiToken).select_related("user", "org")
        if self.access.can(Capability.ADMIN_READ):
            return tokens
        return tokens.filter(user=self.request.user)


class TokenListApi(TokenScopeMixin, OrgApi):
    capabilities = {"GET": Capability.READ, "POST": Capability.SELF}

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        read_only = serializers.BooleanField(default=False)
        expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
        user = serializers.EmailField(
            required=False, help_text="Admins only, and only a service account's: tokens of "
            "people are made by those people themselves")

    @extend_schema(responses=TokenOutputSerializer(many=True),
                   summary="Tokens (all of the organization for admins, else your own)")
    def get(self, request):
        return Response(TokenOutputSerializer(self.tokens(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: TokenCreatedSerializer},
                   summary="Create a token; the raw value is in this response only")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        user = self._owner_of_new_token(fields.pop("user", None))
        token, raw = token_create(org=self.org, user=user, actor=self.actor(), **fields)
        body = {**TokenOutputSerializer(token).data, "token": raw}
        return Response(body, status=status.HTTP_201_CREATED)

    def _owner_of_new_token(self, email):
        if email is None or email.lower() == self.request.user.email:
            return self.request.user
        if not self.access.can(Capability.ADMIN):
            self.permission_denied(self.request, "Tokens are personal: you create only your own.")
        # a person's, refused by the service: tokens are personal
        return self.get_scoped(Membership.objects.select_related("user"),
                               user__email=email.lower()).user


class TokenDetailApi(TokenScopeMixin, OrgApi):
    capabilities = {"GET": Capability.READ, "DELETE": Capability.SELF}

    @extend_schema(responses=TokenOutputSerializer, summary="One token (never its raw value)")
    def get(self, request, token_id: int):
        return Response(TokenOutputSerializer(self._token(token_id)).data)

    @extend_schema(responses=TokenOutputSerializer, summary="Revoke a token")
    def delete(self, request, token_id: int):
        token = token_revoke(token=self._token(token_id), actor=self.actor())
        return Response(TokenOutputSerializer(token).data)

    def _token(self, token_id):
        return self.get_scoped(self.tokens(), pk=token_id)
