"""Browser pages of the foundation: login, choosing an organization, the landing page."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from tenancy.authentication import SESSION_ORG_KEY, session_access
from tenancy.models import Membership


@login_required
@require_http_methods(["GET", "POST"])
def org_select(request):
    memberships = Membership.objects.select_related("org").filter(user=request.user)
    if request.method == "POST":
        chosen = memberships.filter(org__slug=request.POST.get("org", "")).first()
        if chosen is None:
            raise Http404("No such organization.")
        request.session[SESSION_ORG_KEY] = chosen.org_id
        return redirect("home")
    return render(request, "tenancy/org_select.html", {"memberships": memberships})


@login_required
def home(request):
    access = session_access(request)
    if access is None:
        return redirect("org-select")
    return render(request, "tenancy/home.html", {"access": access})
