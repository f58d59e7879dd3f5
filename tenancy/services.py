"""Writes of organizations, memberships and tokens. The API, the admin and the commands all
call these, so each change is validated once and audited once."""

import logging
import re
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from audit.actors import Actor
from audit.services import audit_chain_start, audit_record
from config.exceptions import ApplicationError
from tenancy.models import ApiToken, MemberKind, Membership, Organization, User
from tenancy.roles import Capability, Role, capabilities_of
from tenancy.tokens import token_generate, token_hash

logger = logging.getLogger(__name__)


def _membership_view(membership: Membership) -> dict:
    view = {"user": membership.user.email, "role": membership.role}
    if membership.kind != MemberKind.PERSON:
        view["kind"] = membership.kind
    return view


def _token_view(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "prefix": token.prefix,
        "user": token.user.email,
        "read_only": token.read_only,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        **({"run_uuid": token.run_uuid} if token.run_uuid else {}),
    }


@transaction.atomic(durable=True)
def organization_create(*, slug: str, name: str, actor: Actor) -> Organization:
    if Organization.objects.filter(slug=slug).exists():
        raise ApplicationError(f"Organization '{slug}' already exists.", kind="already_exists")
    org = Organization(slug=slug, name=name or slug)
    org.full_clean()
    org.save()
    audit_chain_start(org=org)
    # What other apps set up for a new organization (e.g. its Default experiment), in this
    # same transaction and under this one event; named in settings so tenancy imports none.
    after = {"slug": org.slug, "name": org.name}
    for initializer in settings.LEDGERFLOW_ORG_INITIALIZERS:
        after.update(import_string(initializer)(org=org))
    audit_record(org=org, actor=actor, action="organization.created", target=org, after=after)
    return org


@transaction.atomic(durable=True)
def organization_update(*, org: Organization, name: str, actor: Actor) -> Organization:
    before = {"name": org.name}
    org.name = name
    org.full_clean()
    org.save(update_fields=["name"])
    audit_record(org=org, actor=actor, action="organization.updated", target=org,
                 before=before, after={"name": name})
    return org


def _user_get_or_create(*, email: str, password: str | None, name: str,
                        loopback_only: bool = False) -> tuple[User, bool]:
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, False
    first, _, last = name.partition(" ")
    return User.objects.create_user(email, password, first_name=first, last_name=last,
                                    loopback_only=loopback_only), True


@transaction.atomic(durable=True)
def user_loopback_only_set(*, org: Organization, user: User, actor: Actor) -> User:
    """Make `user` a demo account: signed in and authenticated only from the machine itself
    (tenancy.authentication.loopback_refusal), recorded in the trail of `org`."""
    if not user.loopback_only:
        user.loopback_only = True
        user.save(update_fields=["loopback_only"])
        audit_record(org=org, actor=actor, action="user.loopback_only", target=user,
                     target_label=user.email, after={"email": user.email, "loopback_only": True})
    return user


@transaction.atomic(durable=True)
def user_password_set(*, org: Organization, user: User, password: str, actor: Actor) -> User:
    """Give `user` a new password (checked by Django's password validators), recorded in the
    trail of `org`, the organization on whose behalf it was set; the password itself never is."""
    if not Membership.objects.filter(org=org, user=user).exists():
        raise ApplicationError(f"{user.email} is not a member of {org.slug}.",
                               fields={"user": ["not a member of this organization"]})
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), fields={"password": exc.messages}) \
            from None
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(org=org, actor=actor, action="user.password_set", target=user,
                 target_label=user.email, after={"email": user.email})
    return user


def lockout_record(*, email: str, ip_address: str, via: str, until: datetime) -> int:
    """Record that `email`'s account was locked out (tenancy/throttling.py) in the trail of each
    of its organizations, each in its own transaction; returns how many. An unknown account
    has no organization to record it in: the lockout is then logged and listed in django-axes'
    admin only."""
    user = User.objects.filter(email=email).first()
    if user is None:
        return 0
    actor = Actor.system(f"lockout of {ip_address or 'an unknown address'}",
                         client_ip=ip_address or None)
    memberships = list(Membership.objects.select_related("org").filter(user=user))
    for membership in memberships:
        with transaction.atomic():
            audit_record(org=membership.org, actor=actor, action="user.locked_out", target=user,
                         target_label=user.email,
                         after={"email": user.email, "ip_address": ip_address, "via": via,
                                "until": until.isoformat()})
    return len(memberships)


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ApplicationError(
            f"Unknown role '{role}'; choose one of {', '.join(Role.values)}.",
            fields={"role": ["invalid choice"]},
        )


def _require_owner_for(role: str, actor_membership: Membership | None) -> None:
    # Only owners hand out or take away ownership; commands and superusers pass None.
    if role == Role.OWNER and actor_membership is not None \
            and Capability.OWN not in capabilities_of(actor_membership.role):
        raise ApplicationError("Only an owner can grant or remove the owner role.",
                               kind="permission_denied")


@transaction.atomic(durable=True)
def membership_add(
    *,
    org: Organization,
    email: str,
    role: str,
    actor: Actor,
    password: str | None = None,
    name: str = "",
    actor_membership: Membership | None = None,
    loopback_only: bool = False,
) -> Membership:
    """Add a user (created when new; `loopback_only` for `make run`'s demo accounts) to the
    organization with a role."""
    _validate_role(role)
    _require_owner_for(role, actor_membership)
    user, created = _user_get_or_create(email=email, password=password, name=name,
                                        loopback_only=loopback_only)
    if Membership.objects.filter(org=org, user=user).exists():
        raise ApplicationError(f"{user.email} is already a member of {org.slug}.",
                               kind="already_exists")
    return _membership_create(org=org, user=user, role=role, actor=actor, user_created=created)


def _membership_create(*, org: Organization, user: User, role: str, actor: Actor,
                       user_created: bool) -> Membership:
    membership = Membership(org=org, user=user, role=role)
    membership.full_clean()
    membership.save()
    audit_record(org=org, actor=actor, action="membership.created", target=membership,
                 after={**_membership_view(membership), "user_created": user_created,
                        **({"loopback_only": True} if user.loopback_only else {})})
    return membership


def _owners_left(membership: Membership) -> int:
    # Lock the owners' rows: two requests demoting the last two owners at once must not
    # both see "one other owner left".
    owners = Membership.objects.select_for_update().filter(org_id=membership.org_id,
                                                           role=Role.OWNER)
    return sum(1 for owner in owners if owner.pk != membership.pk)


SERVICE_NEVER_OWNER = "A service account is never an owner."
SERVICE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


@transaction.atomic(durable=True)
def service_account_add(*, org: Organization, name: str, role: str, actor: Actor,
                        actor_membership: Membership | None = None) -> Membership:
    """A member for automation: a user of its own (`<name>@<org>.service.invalid`, no password:
    it never logs in) whose tokens the organization's admins create."""
    if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
        raise ApplicationError("A service account's name is 1 to 40 lower-case letters, digits "
                               "and inner hyphens.", fields={"name": ["invalid name"]})
    _validate_role(role)
    if role == Role.OWNER:
        raise ApplicationError(SERVICE_NEVER_OWNER, fields={"role": ["not for a service account"]})
    email = f"{name}@{org.slug}.service.invalid"
    if User.objects.filter(email=email).exists():
        raise ApplicationError(f"{org.slug} already has a service account '{name}'.",
                               kind="already_exists")
    user = User.objects.create_user(email, None, first_name=name)
    membership = Membership(org=org, user=user, role=role, kind=MemberKind.SERVICE)
    membership.full_clean()
    membership.save()
    audit_record(org=org, actor=actor, action="membership.created", target=membership,
                 after={**_membership_view(membership), "user_created": True})
    return membership


@transaction.atomic(durable=True)
def membership_update(
    *, membership: Membership, role: str, actor: Actor,
    actor_membership: Membership | None = None,
) -> Membership:
    _validate_role(role)
    if role == membership.role:
        return membership
    if role == Role.OWNER and membership.kind == MemberKind.SERVICE:
        raise ApplicationError(SERVICE_NEVER_OWNER, fields={"role": ["not for a service account"]})
    _require_owner_for(role, actor_membership)
    _require_owner_for(membership.role, actor_membership)
    if membership.role == Role.OWNER and _owners_left(membership) == 0:
        raise ApplicationError("An organization must keep at least one owner.", kind="conflict")
    return _membership_role_set(membership=membership, role=role, actor=actor)


def _membership_role_set(*, membership: Membership, role: str, actor: Actor) -> Membership:
    before = _membership_view(membership)
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    audit_record(org=membership.org, actor=actor, action="membership.role_changed",
                 target=membership, before=before, after=_membership_view(membership))
    return membership


@transaction.atomic(durable=True)
def membership_remove(
    *, membership: Membership, actor: Actor, actor_membership: Membership | None = None
) -> None:
    """Remove a member; their tokens in this organization are revoked with them."""
    _require_owner_for(membership.role, actor_membership)
    if membership.role == Role.OWNER and _owners_left(membership) == 0:
        raise ApplicationError("An organization must keep at least one owner.", kind="conflict")
    _membership_delete(membership=membership, actor=actor)


def _membership_delete(*, membership: Membership, actor: Actor) -> None:
    revoked = ApiToken.objects.filter(
        org_id=membership.org_id, user_id=membership.user_id, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    before = _membership_view(membership)
    audit_record(org=membership.org, actor=actor, action="membership.removed",
                 target=membership, before=before, after={"tokens_revoked": revoked})
    membership.delete()


@transaction.atomic(durable=True)
def membership_sync_from_idp(*, user: User | None, email: str, managed: list[Organization],
                             wanted: dict[Organization, str], actor: Actor) -> User:
    """Bring a person's memberships in the organizations the identity provider's group mapping
    names (`managed`) in line with the roles their groups give now (`wanted`): added, role
    changed or removed, each audited in its organization's trail by `actor` (the provider), all
    in this one transaction with the account itself when it is new (`user` None: made for
    `email`, with no password). The provider, not a member, decides here, so the admins' rules
    of membership_update do not apply; owner memberships are left alone instead (only owners
    make or unmake owners), as are service accounts', and so is every other organization."""
    if Role.OWNER in wanted.values():
        raise ApplicationError("Only an owner can grant or remove the owner role.",
                               kind="permission_denied")
    if user is None:
        user, created = User.objects.create_user(email), True
    else:  # locked: two sign-ins of one person at once would add the same membership twice
        user, created = User.objects.select_for_update().get(pk=user.pk), False
    current = {m.org_id: m for m in Membership.objects.select_for_update(of=("self",))
               .select_related("org", "user").filter(user=user, org__in=managed)}
    for org in managed:
        membership, role = current.get(org.pk), wanted.get(org)
        if membership is None:
            if role is not None:
                _membership_create(org=org, user=user, role=role, actor=actor,
                                   user_created=created)
        else:
            _membership_sync(membership=membership, role=role, actor=actor)
    return user


def _membership_sync(*, membership: Membership, role: str | None, actor: Actor) -> None:
    if membership.role == Role.OWNER or membership.kind == MemberKind.SERVICE:
        if role != membership.role:
            logger.info("%s stays %s of %s: the identity provider's groups (which give %s) do "
                        "not change it", membership.user.email, membership.role,
                        membership.org.slug, role or "no role")
    elif role is None:
        _membership_delete(membership=membership, actor=actor)
    elif role != membership.role:
        _membership_role_set(membership=membership, role=role, actor=actor)


@transaction.atomic(durable=True)
def token_create(
    *,
    org: Organization,
    user: User,
    name: str,
    actor: Actor,
    read_only: bool = False,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored or shown again.
    Tokens are personal (`token_mint_check`)."""
    token_mint_check(org=org, user=user, actor=actor)
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("The expiry must lie in the future.",
                               fields={"expires_at": ["must be in the future"]})
    raw, lookup = token_generate(read_only=read_only)
    token = ApiToken(org=org, user=user, name=name, lookup=lookup, secret_hash=token_hash(raw),
                     read_only=read_only, expires_at=expires_at,
                     created_by=actor.user if getattr(actor.user, "pk", None) else None)
    token.full_clean()
    token.save()
    audit_record(org=org, actor=actor, action="api_token.created", target=token,
                 after=_token_view(token))
    return token, raw


def token_mint_check(*, org: Organization, user: User, actor: Actor) -> None:
    """Refuses (ApplicationError) a token for `user` in `org` made by `actor`. A person's
    token is made by that person only, so no one can act as another member (and, holding two
    tokens, be both people of a four-eyes approval). A service account's tokens are
    made by the organization's admins and owners (or a Django superuser). An operator's command
    at the server, which no member can reach, may make either: it is how a first owner gets a
    token."""
    membership = Membership.objects.filter(org=org, user=user).first()
    if membership is None:
        raise ApplicationError(f"{user.email} is not a member of {org.slug}.",
                               fields={"user": ["not a member of this organization"]})
    if actor.user is None:
        return  # manage.py (the operator) or the service's own tasks
    if membership.kind == MemberKind.SERVICE:
        if actor.user.is_superuser:
            return
        minter = Membership.objects.filter(org=org, user=actor.user).first()
        if minter is None or minter.kind != MemberKind.PERSON \
                or not minter.can(Capability.ADMIN):
            raise ApplicationError(f"Only an admin or owner of {org.slug} creates tokens for its "
                                   "service accounts.", kind="permission_denied")
        return
    if actor.user.pk != membership.user_id:
        raise ApplicationError(
            f"Tokens are personal: only {membership.user.email} creates tokens for "
            f"{membership.user.email}, signed in as themselves. For automation, use a service "
            "account (POST /api/v1/service-accounts/).", kind="permission_denied")


def _version_pair(item) -> list | None:
    """[name, version] with the version as an int, from [name, 3] or [name, "3"]; else None."""
    if not (isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)
            and item[0]):
        return None
    number = item[1]
    if isinstance(number, str) and number.isascii() and number.isdigit():
        number = int(number)
    return [item[0], number] if type(number) is int and number > 0 else None


def _run_token_reads(reads: dict | None) -> dict:
    """`reads` checked, as {"runs": [run id, ...], "model_versions": [[name, int], ...]}."""
    reads = reads or {}
    runs, versions = reads.get("runs") or [], reads.get("model_versions") or []
    pairs = [_version_pair(v) for v in versions] if isinstance(versions, list) else [None]
    if set(reads) - {"runs", "model_versions"} or None in pairs or not isinstance(runs, list) \
            or not all(isinstance(r, str) and r for r in runs):
        raise ApplicationError('A run token reads {"runs": [run id, ...], "model_versions": '
                               '[[name, version], ...]}.')
    return {key: value for key, value in (("runs", sorted(set(runs))),
                                          ("model_versions", pairs)) if value}


@transaction.atomic(durable=True)
def token_create_for_run(*, run, user: User, actor: Actor, ttl_seconds: int,
                         reads: dict | None = None) -> tuple[ApiToken, str]:
    """A token for `run`'s command (never its submitter's own token), expiring after
    `ttl_seconds` and dead once the run ends. Over the MLflow protocol only, it reaches the run,
    the runs created under it, its experiment, and reads what `reads` names: the run's inputs,
    {"runs": [run id, ...], "model_versions": [[name, version], ...]}
    (tracking/mlflow_api/scope.py)."""
    if ttl_seconds <= 0:
        raise ApplicationError("A run token needs a positive lifetime.")
    scope_reads = _run_token_reads(reads)
    raw, lookup = token_generate(read_only=False)
    token = ApiToken.objects.create(
        org_id=run.org_id, user=user, name=f"run {run.run_uuid}", lookup=lookup,
        secret_hash=token_hash(raw), expires_at=timezone.now() + timedelta(seconds=ttl_seconds),
        run_uuid=run.run_uuid, scope_reads=scope_reads,
        created_by=actor.user if getattr(actor.user, "pk", None) else None)
    audit_record(org=token.org, actor=actor, action="api_token.created", target=token,
                 after={**_token_view(token), **({"reads": scope_reads} if scope_reads else {})})
    return token, raw


@transaction.atomic(durable=True)
def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    """Revoke a token. Revoking twice is harmless and records nothing the second time."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    before = _token_view(token)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(org=token.org, actor=actor, action="api_token.revoked", target=token,
                 before=before, after=_token_view(token))
    return token
