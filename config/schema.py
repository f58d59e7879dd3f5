"""OpenAPI generation tweaks, in one place, for the project's conventions."""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema


class AutoSchema(BaseAutoSchema):
    """Serializers nested in a view (`TokenListApi.InputSerializer`, STYLE.md section 2) get
    the view's name as prefix; operation ids come from the view's name (`token_list_get`)."""

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        qualname = type(serializer).__qualname__
        if "." in qualname and not getattr(getattr(serializer, "Meta", None), "ref_name", None):
            outer = qualname.split(".")[0].removesuffix("Api")
            return f"{outer}{name}"
        return name

    def get_operation_id(self):
        view = type(self.view).__name__.removesuffix("Api")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", view).lower()
        return f"{snake}_{self.method.lower()}"


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.TokenAuthentication"
    name = ["bearer", "basic"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "An API token (lfw_… / lfr_…)"},
            {"type": "http", "scheme": "basic", "description": "Your email and an API token"},
        ]


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.OrgSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
