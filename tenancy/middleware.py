"""Browser sessions: a demo account's, used from another address than the machine's, is ended
(the login form then says why, tenancy.forms.LoginForm); any session ends when idle for
LEDGERFLOW_SESSION_IDLE_SECONDS or LEDGERFLOW_SESSION_MAX_SECONDS after its login."""

import time

from django.conf import settings
from django.contrib.auth import logout

from config.addresses import client_address
from tenancy.authentication import loopback_refusal


def loopback_sessions_middleware(get_response):
    def middleware(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated \
                and loopback_refusal(user, client_address(request)):
            logout(request)
        return get_response(request)

    return middleware


STARTED, SEEN = "ledgerflow_started", "ledgerflow_seen"
SEEN_EVERY = 60  # s: the last request's time is written at most this often (one session write)


def session_lifetime_middleware(get_response):
    def middleware(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            started = request.session.get(STARTED)
            seen = request.session.get(SEEN, started)
            if started is None:
                request.session[STARTED] = request.session[SEEN] = now
            elif now - started > settings.LEDGERFLOW_SESSION_MAX_SECONDS \
                    or now - seen > settings.LEDGERFLOW_SESSION_IDLE_SECONDS:
                logout(request)  # the page then asks for a login, as for anyone signed out
            elif now - seen >= SEEN_EVERY:
                request.session[SEEN] = now
        return get_response(request)

    return middleware
