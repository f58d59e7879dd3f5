"""Base of every native API view: resolves the organization once, scopes every fetch."""

from rest_framework.views import APIView

from audit.actors import Actor
from tenancy.authentication import Access
from tenancy.scoping import org_get, org_queryset


class OrgApi(APIView):
    """`self.access` is who acts where; `capabilities` names what each method needs."""

    capabilities: dict = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Expose the organization to middleware (access log) on the plain Django request.
        request._request.org = self.access.org

    @property
    def access(self) -> Access:
        return self.request.auth

    @property
    def org(self):
        return self.access.org

    def actor(self) -> Actor:
        return Actor.from_request(self.request, token=self.access.token)

    def scoped(self, source):
        return org_queryset(source, org=self.org)

    def get_scoped(self, source, **lookup):
        return org_get(source, org=self.org, **lookup)
