"""Forms of the pages that edit what a disclosure needs: the organization's compliance profile
and a model's feature catalogue (reports/profile_views.py). The fields are the model's, as the
API's serializers take them; what is saved, and refused, is decided by the same services the
API and the admin call (reports.services), so a page refuses exactly what they refuse."""

from django import forms

from config.exceptions import ApplicationError
from reports.completeness import LANGUAGE_NAMES
from reports.models import FEATURE_FIELDS, PROFILE_FIELDS, ComplianceProfile, FeatureDescription

# What each text of the profile answers in a disclosure (docs/disclosures.md), in the order
# of reports.models.PROFILE_TEXTS.
PROFILE_TEXT_TITLES = {
    "purposes": ("Purposes", "Art. 15(1)(a) GDPR: why the data is processed"),
    "legal_basis": ("Legal basis", "Art. 6 GDPR; also for a decision recorded without its own"),
    "art22_ground": ("Ground for automated decisions",
                     "Art. 22(2) GDPR; also for a decision recorded without its own"),
    "recipients": ("Recipients", "Art. 15(1)(c) GDPR; also for a decision recorded without "
                                 "its own"),
    "transfers": ("Transfers to third countries",
                  'Art. 15(2) GDPR and the safeguards; "none" is an answer, but give it'),
    "retention": ("Retention", "Art. 15(1)(d) GDPR: how long, or by which criteria"),
    "sources": ("Sources", "Art. 15(1)(g) GDPR: where the data comes from"),
    "human_review": ("Human review", "Art. 22(3) GDPR: how to obtain human intervention, "
                                     "state one's view and contest the decision"),
    "consequences": ("Significance and consequences",
                     "Art. 15(1)(h) GDPR: what the automated decision means for the person"),
}
# What each text of a feature is for in a disclosure, in the order of
# reports.models.CATALOGUE_TEXTS.
CATALOGUE_TEXT_TITLES = {
    "label": ("Label", "what the customer reads instead of the column name"),
    "meaning": ("Meaning", "printed under the label with the customer's data (section 3)"),
    "category": ("Category", 'the features\' categories make up "Categories of personal data" '
                             "(section 4)"),
    "source": ("Source", "where the input comes from, unless the decision recorded its own"),
}


def _language_labels(names) -> dict:
    """Each per-language field labelled with its language: the page shows the two side by
    side under the text's title."""
    return {f"{name}_{code}": language for name in names
            for code, language in LANGUAGE_NAMES.items()}


class PageModelForm(forms.ModelForm):
    """Labels as on every other page of the site: without Django's trailing colon."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)

    def refused(self, exc: ApplicationError) -> None:
        """The service's refusal shown on the form: each reason next to its field, the rest
        (or the message, when it names no field) above the form."""
        for field, reasons in exc.fields.items():
            self.add_error(field if field in self.fields else None,
                           [str(reason) for reason in reasons])
        if not exc.fields:
            self.add_error(None, exc.message)


class ProfileForm(PageModelForm):
    class Meta:
        model = ComplianceProfile
        fields = PROFILE_FIELDS
        labels = {"controller_name": "Controller", "controller_address": "Controller's address",
                  "dpo_contact": "Data protection officer (contact)",
                  "authority_name": "Supervisory authority",
                  "authority_address": "Authority's address",
                  **_language_labels(PROFILE_TEXT_TITLES)}
        widgets = {name: forms.Textarea(attrs={"rows": 3}) for name in PROFILE_FIELDS
                   if name not in ("controller_name", "authority_name")}


class FeatureForm(PageModelForm):
    class Meta:
        model = FeatureDescription
        fields = ["feature", *FEATURE_FIELDS]
        labels = {"feature": "Feature (the model's column name)",
                  "is_address_data": "Address data (BDSG § 31)",
                  **_language_labels(CATALOGUE_TEXT_TITLES)}
        widgets = {f"{name}_{code}": forms.Textarea(attrs={"rows": 2})
                   for name in ("meaning", "source") for code in LANGUAGE_NAMES}
