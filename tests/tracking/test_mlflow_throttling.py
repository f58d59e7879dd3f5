"""The real mlflow client, throttled and locked out (tenancy/throttling.py). The server answers
429 REQUEST_LIMIT_EXCEEDED with Retry-After (tests/tenancy/test_throttling.py); the client
retries a 429 after Retry-After (MLFLOW_HTTP_REQUEST_MAX_RETRIES, here 0) and then reports
"too many 429 error responses"."""

import pytest
from django.test import override_settings
from mlflow.exceptions import MlflowException


def test_the_client_sees_its_flood_throttled(personas, mlflow_as):
    client = mlflow_as(personas.alice)
    with override_settings(LEDGERFLOW_API_RATE=3):
        for n in range(3):
            client.create_experiment(f"flood-{n}")
        with pytest.raises(MlflowException) as raised:
            client.create_experiment("flood-3")
    assert "too many 429 error responses" in raised.value.message
    assert client.get_experiment_by_name("flood-3") is None  # nothing written


def test_a_client_guessing_tokens_is_locked_out(personas, mlflow_as):
    guesser = mlflow_as(personas.alice.raw_token[:-4] + "zzzz")
    for _ in range(9):
        with pytest.raises(MlflowException) as raised:
            guesser.search_experiments()
        assert raised.value.error_code == "UNAUTHENTICATED"
    with pytest.raises(MlflowException) as raised:
        guesser.search_experiments()
    assert "too many 429 error responses" in raised.value.message
    # Alice's own token, from the same machine, waits out the lockout too.
    with pytest.raises(MlflowException) as raised:
        mlflow_as(personas.alice).search_experiments()
    assert "too many 429 error responses" in raised.value.message
