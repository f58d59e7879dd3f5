import json
import logging

from django.core.management import call_command

from config.settings.fragments.logging import LOGGING


def test_openapi_schema_is_served_and_lists_the_native_api(client, db):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in ("/api/v1/me/", "/api/v1/members/", "/api/v1/tokens/", "/api/v1/audit/events/"):
        assert path in paths


def test_schema_generates_without_warnings(tmp_path, capsys, db):
    call_command("spectacular", "--file", str(tmp_path / "schema.yml"), "--fail-on-warn")
    assert (tmp_path / "schema.yml").stat().st_size > 1000


def test_api_docs_page_uses_only_local_assets(client, db):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_logs_are_json_lines_carrying_the_request_id(client, db):
    """settings.LOGGING's JSON formatter and django-guid's filter, on a handler like the
    console one: the access log line carries the request id the response returns."""
    import io

    from django_guid.log_filters import CorrelationId
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**{k: v for k, v in LOGGING["formatters"]["json"].items()
                                          if k != "()"}))
    handler.addFilter(CorrelationId())
    logger = logging.getLogger("ledgerflow.access")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        response = client.get("/version", HTTP_X_REQUEST_ID="0f8fad5bd9cb469fa16570867728950e")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["request_id"] == response["X-Request-ID"] == "0f8fad5bd9cb469fa16570867728950e"
    assert line["path"] == "/version" and line["status"] == 200 and "duration_ms" in line
    assert line["level"] == "INFO" and "time" in line
