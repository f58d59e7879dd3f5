from tenancy.authentication import session_access
from tenancy.roles import Capability


def organization(request):
    """The organization a browser session acts in and what its role may do, for the
    navigation bar and for showing only the buttons the user may use."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith("/admin/"):
        return {}
    access = getattr(request, "access", None) or session_access(request)
    can = {c.value: access.can(c) for c in Capability} if access else {}
    return {"current_access": access, "can": can}
