"""Browser pages (see tenancy/web.py for the access rules)."""

urlpatterns = []
