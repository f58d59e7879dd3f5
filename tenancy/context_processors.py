from tenancy.authentication import session_access


def organization(request):
    """The organization a browser session acts in, for the navigation bar."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith("/admin/"):
        return {}
    access = session_access(request)
    return {"current_access": access}
