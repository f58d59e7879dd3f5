"""A browser session of a demo account, used from another address than the machine's, is
ended: the login form then says why (tenancy.forms.LoginForm)."""

from django.contrib.auth import logout

from tenancy.authentication import loopback_refusal


def loopback_sessions_middleware(get_response):
    def middleware(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated \
                and loopback_refusal(user, request.META.get("REMOTE_ADDR")):
            logout(request)
        return get_response(request)

    return middleware
