"""The login form: Django's, refusing a demo account away from its machine by name."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from config.addresses import client_address
from tenancy.authentication import loopback_refusal


class LoginForm(AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages,
                      "invalid_login": "Your email and password didn't match. Please try again."}

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        client_ip = client_address(self.request) if self.request is not None else None
        if refusal := loopback_refusal(user, client_ip):
            raise ValidationError(refusal, code="loopback_only")
