"""Browser pages: every page acts in the organization the session chose, with the rights of
the user's role there. Reads need READ; a page or a POST that changes something names the
capability it needs, and a role without it gets 403 (the buttons are not shown either)."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect

from audit.actors import Actor
from config.exceptions import ApplicationError
from tenancy.authentication import Access, session_access
from tenancy.roles import Capability


def org_page(view=None, *, capability: Capability = Capability.READ,
             post_capability: Capability | None = None):
    """`request.access` for the view; a session without an organization picks one first.
    `post_capability` is what a POST to the same page needs (default: `capability`)."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            access = session_access(request)
            if access is None:
                return redirect("org-select")
            needed = post_capability if request.method == "POST" and post_capability \
                else capability
            require(access, needed)
            request.access = access
            return view(request, *args, **kwargs)

        return wrapped

    return decorate(view) if view is not None else decorate


def require(access: Access, capability: Capability) -> None:
    if not access.can(capability):
        raise PermissionDenied(f"Your role '{access.role}' does not allow this "
                               f"({capability} needed).")


def actor(request) -> Actor:
    return Actor.from_request(request)


def found(lookup, *args, **kwargs):
    """`lookup(*args, **kwargs)` (a selector, `org_get`), or 404: another organization's
    object and a missing one look the same."""
    try:
        return lookup(*args, **kwargs)
    except ApplicationError as exc:
        if exc.kind == "not_found":
            raise Http404(exc.message) from None
        raise
