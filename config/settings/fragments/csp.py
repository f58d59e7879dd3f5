"""Content-Security-Policy for every page (django-csp 4, csp.middleware.CSPMiddleware).

Enforced, not report-only. Scripts and stylesheets come from this origin (/static/) or carry
the request's nonce (`nonce="{{ request.csp_nonce }}"`); there is no 'unsafe-inline' and no
'unsafe-eval', so markup injected into a page (a stored XSS in a run name, say) can neither run
script nor restyle the page, and inline `style="..."` attributes are refused as well: templates
use the classes of their app's static CSS. Setting styles from JavaScript through the CSSOM
(element.style, what Plotly, Django admin's scripts and Swagger UI do) stays allowed.

Where a page needs inline code it carries the nonce: drf-spectacular's Swagger UI page
(templates/drf_spectacular/swagger_ui.html) and the stylesheets Plotly fills at run time
(tracking/templates/tracking/_plotly.html). django-csp puts the nonce into the policy only
when the page's templates used it: a page without inline code gets `'self'` alone, stricter
still (and its markup stays the same from one response to the next).

data: images are Swagger UI's and Django admin's icons inside their stylesheets. Nobody may
frame a page (frame-ancestors, as well as X-Frame-Options: DENY), forms post only here, <base>
is refused and no plugin content loads (object-src).

tests/ui/test_csp.py opens every page in Chromium and fails on any violation.
"""

from csp.constants import NONCE, NONE, SELF

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-src": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
