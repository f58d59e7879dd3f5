"""django-axes' signals, wired to the lockout marks every process checks and to the trail."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from config.scope import unscoped
from tenancy.services import lockout_record
from tenancy.throttling import lift, lock_out

logger = logging.getLogger(__name__)


def on_locked_out(request, username: str | None, ip_address: str | None, **_kwargs) -> None:
    """django-axes locked an address or account out: mark it for every process and record it
    in the trail of each of the account's organizations."""
    newly = lock_out(ip_address, username)
    seconds = settings.LEDGERFLOW_AUTH_LOCKOUT_SECONDS
    logger.warning("Locked out for %s s: address %s, account %s", seconds, ip_address,
                   username or "-")
    if newly:  # once per lockout, however often it is tried during it
        with unscoped():  # in each of the account's organizations, not the token's alone
            lockout_record(email=username, ip_address=ip_address or "",
                           via=request.path if request is not None else "",
                           until=timezone.now() + timedelta(seconds=seconds))


def on_attempt_deleted(instance, **_kwargs) -> None:
    """An admin deleted an attempt in django-axes' admin (or `axes_reset` ran): its address and
    account are no longer locked out."""
    lift(instance.ip_address, instance.username)
