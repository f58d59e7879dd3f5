from django.db import connection


def test_health_answers_ok_without_credentials(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.content == b"OK"


def test_ready_checks_database_and_broker(client, db):
    response = client.get("/ready")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_ready_reports_unavailable_broker(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error:")
    assert connection.is_usable()


def test_ready_says_why_only_to_a_caller_on_this_machine(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    near = client.get("/ready").json()["checks"]["broker"]  # the test client: 127.0.0.1
    far = client.get("/ready", REMOTE_ADDR="203.0.113.9")
    assert near.startswith("error: ") and len(near) > len("error: ")  # the exception's text
    assert far.status_code == 503 and far.json()["checks"] == {"database": "ok",
                                                               "broker": "error"}


def test_a_malformed_incoming_request_id_is_replaced(client, db):
    for bad in ("'; DROP TABLE x; --", "a" * 500, "evil\nforged-log-line"):
        response = client.get("/health", HTTP_X_REQUEST_ID=bad)
        assert response["X-Request-ID"] != bad and len(response["X-Request-ID"]) == 32


def test_every_response_carries_a_request_id(client):
    response = client.get("/health")
    assert len(response["X-Request-ID"]) == 32


def test_a_well_formed_incoming_request_id_is_kept(client):
    rid = "0f8fad5bd9cb469fa16570867728950e"
    response = client.get("/health", HTTP_X_REQUEST_ID=rid)
    assert response["X-Request-ID"] == rid


def test_probes_answer_whatever_host_a_balancer_sends_and_pages_do_not(client, db, settings):
    settings.ALLOWED_HOSTS = ["ledgerflow.example"]
    for path in ("/health", "/ready", "/metrics"):
        assert client.get(path, HTTP_HOST="10.0.0.7:8000").status_code == 200, path
    assert client.get("/login/", HTTP_HOST="10.0.0.7:8000").status_code == 400


def test_metrics_name_routes_and_queues_and_can_require_a_token(client, db, settings):
    client.get("/api/2.0/mlflow/experiments/get?experiment_id=0")  # 401: no token
    body = client.get("/metrics").content.decode()
    assert ('ledgerflow_http_request_duration_seconds_count{method="GET",'
            'route="mlflow/experiments/get",status="401"}') in body
    for queue in ("default", "packaging", "projects", "reports"):
        assert f'ledgerflow_celery_queue_depth{{queue="{queue}"}}' in body
    settings.LEDGERFLOW_METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
