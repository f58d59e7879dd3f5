"""`{% compliance_setup %}`: on the compliance page, what disclosures need and where to edit
it: the profile's completeness per language and each model's feature catalogue. A tag, so the
requests page's view stays as it is."""

from django import template

from models_registry.models import RegisteredModel
from reports.completeness import LANGUAGE_NAMES, profile_missing
from reports.models import ComplianceProfile

register = template.Library()


@register.inclusion_tag("reports/pages/_setup.html", takes_context=True)
def compliance_setup(context) -> dict:
    org = context["request"].access.org
    profile = ComplianceProfile.objects.filter(org=org).first()
    return {"profile": profile,
            "gaps": [(language, len(profile_missing(profile, code)))
                     for code, language in LANGUAGE_NAMES.items()],
            "models": RegisteredModel.objects.filter(org=org, deleted=False).order_by("name")
            .values_list("name", flat=True)}
