"""Guessing credentials and flooding the API: lockouts (django-axes) and request rates.

Lockouts. A failed password (the login form, Django admin) and a guessed token (an API or
MLflow call whose token does not exist or whose secret is wrong) count as failures of the
caller's address and, when the account is known, of that account. django-axes counts them in
the database (its admin lists them); LEDGERFLOW_AUTH_FAILURE_LIMIT failures within
LEDGERFLOW_AUTH_LOCKOUT_SECONDS lock the address or the account out for that long:
logins answer 429 with the login page saying until when, API and MLflow calls 429 with
`Retry-After` (MLflow's REQUEST_LIMIT_EXCEEDED on MLflow routes), before the guess is
evaluated. Each lockout of an account is recorded in the audit trail of every organization the
account belongs to (`user.locked_out`). A revoked or expired token is not a guess and does not
count.

Rates. Every authenticated API and MLflow call counts against its caller's (token's, or
browser session's) LEDGERFLOW_API_RATE requests per minute, in one-minute windows; past it,
429 with `Retry-After` until the window ends.

Counters and lockout marks live in Django's cache, shared by every process of a deployment
(Redis, or files in the embedded default; config/settings/fragments/throttling.py).
"""

import hashlib
import logging
import time
from dataclasses import dataclass

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import render
from rest_framework.throttling import BaseThrottle

from config.addresses import client_address

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class LockedOut(Exception):
    """The caller's address or account is locked out for `retry_after` more seconds."""

    message: str
    retry_after: int

    def __str__(self):
        return self.message


def client_ip(request) -> str:
    """The caller's address (config.addresses.client_address: behind the TLS proxy named in
    LEDGERFLOW_TRUSTED_PROXIES, the client's, not the proxy's)."""
    return client_address(request)


def account_of(request, credentials: dict | None) -> str | None:
    """The account a login or token names, normalised as emails are stored (lower case)."""
    if credentials and credentials.get("username"):
        return str(credentials["username"]).strip().lower()
    posted = request.POST.get("username") if request is not None and \
        request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data") else None
    return posted.strip().lower() if posted else None


def lockout_parameters(request, credentials: dict | None) -> list:
    """Addresses always count; accounts when one is named (axes would otherwise count every
    nameless failure as one account's)."""
    return ["ip_address", "username"] if account_of(request, credentials) else ["ip_address"]


def _mark(kind: str, value: str) -> str:
    return "lf:lock:" + hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def locked_for(ip: str, account: str | None) -> int | None:
    """Seconds left of a lockout of this address or account, or None. One cache read."""
    keys = [_mark("ip", ip)] + ([_mark("account", account)] if account else [])
    until = max(cache.get_many(keys).values(), default=None)
    left = int(until - time.time()) + 1 if until is not None else 0
    return left if left > 0 else None


def lockout_message(retry_after: int) -> str:
    minutes = max(1, round(retry_after / 60))
    return (f"Too many failed sign-ins or invalid tokens from this address or for this account: "
            f"locked out; try again in {minutes} minute{'s' if minutes != 1 else ''}.")


def check_not_locked(request, account: str | None) -> None:
    """Raise LockedOut before a token is judged, if its caller or account is locked out."""
    left = locked_for(client_ip(request), account)
    if left is not None:
        raise LockedOut(lockout_message(left), left)


def token_failed(request, account: str | None) -> None:
    """Count a guessed token (unknown, or the wrong secret) of the caller, and of `account`
    when the token named one; past the limit, lock them out (django-axes)."""
    user_login_failed.send(sender=__name__, credentials={"username": account} if account else {},
                           request=request)
    if getattr(request, "axes_locked_out", False):
        request.axes_locked_out = False  # answered here, in the route's own format
        left = settings.LEDGERFLOW_AUTH_LOCKOUT_SECONDS
        raise LockedOut(lockout_message(left), left)


def lock_out(ip_address: str | None, account: str | None) -> bool:
    """Mark an address and account locked out for every process, for
    LEDGERFLOW_AUTH_LOCKOUT_SECONDS; True when the account was not locked out already (axes
    signals a lockout again for each attempt made during it)."""
    seconds = settings.LEDGERFLOW_AUTH_LOCKOUT_SECONDS
    until = time.time() + seconds
    cache.add(_mark("ip", ip_address or ""), until, seconds)
    return bool(account) and cache.add(_mark("account", account), until, seconds)


def lift(ip_address: str | None, account: str | None) -> None:
    cache.delete_many([_mark("ip", ip_address or ""),
                       *([_mark("account", account)] if account else [])])


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """What a locked-out login gets (AXES_LOCKOUT_CALLABLE): the login page, 429, saying why and
    until when (Django admin's login included). Token calls are answered by their routes."""
    left = locked_for(client_ip(request), account_of(request, credentials)) \
        or settings.LEDGERFLOW_AUTH_LOCKOUT_SECONDS
    from tenancy.forms import LoginForm

    response = render(request, "registration/login.html",
                      {"form": LoginForm(request), "lockout": lockout_message(left)}, status=429)
    response["Retry-After"] = str(left)
    return response


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check before any password is judged, for logins over HTTP. A sign-in with
    no request (the test client's login(), code of the service itself) is no guess from the
    network and is not counted."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class RequestRateThrottle(BaseThrottle):
    """LEDGERFLOW_API_RATE requests per minute per token (or browser session), fixed windows."""

    def allow_request(self, request, view) -> bool:
        self.retry_after = rate_check(request._request, getattr(request, "auth", None))
        return self.retry_after is None

    def wait(self):
        return self.retry_after


def rate_check(request, access) -> int | None:
    """Count one call of its caller; None if allowed, else the seconds until the next window.
    One cache round trip per call (two on a window's first)."""
    limit = settings.LEDGERFLOW_API_RATE
    if not limit or access is None:
        return None
    token = getattr(access, "token", None)
    caller = f"t{token.pk}" if token is not None else f"u{request.user.pk}"
    now = time.time()
    window = int(now // 60)
    key = f"lf:rate:{caller}:{window}"
    try:
        count = cache.incr(key)
    except ValueError:  # the window's first call
        count = 1 if cache.add(key, 1, 61) else cache.incr(key)
    if count <= limit:
        return None
    return int(60 * (window + 1) - now) + 1
