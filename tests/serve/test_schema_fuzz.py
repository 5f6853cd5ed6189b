"""Schemathesis against the app's own OpenAPI schema: valid and invalid generated requests, no 5xx."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from anyrec.serve import ServeSettings, create_app

WRITES = {("POST", "/v1/events"), ("PUT", "/v1/items/{item}"), ("DELETE", "/v1/items/{item}"),
          ("DELETE", "/v1/users/{user}"), ("POST", "/v1/models/{version}/activate"), ("PUT", "/v1/experiments/{name}"),
          ("POST", "/v1/experiments/{name}/promote")}
PER_OPERATION = 40  # × 21 operations × 2 modes; some operations have fewer distinct cases


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unauthorised_writes: list[str] = field(default_factory=list)


def fuzz(client: TestClient, strategy: Any, is_write: bool, api_key: str, tally: Tally) -> None:
    @settings(max_examples=PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy, with_key=st.booleans())
    def run(case: schemathesis.Case, with_key: bool) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        if with_key:
            kwargs["headers"] = {**kwargs.get("headers", {}), "Authorization": f"Bearer {api_key}"}
        kwargs.pop("cookies", None)
        try:
            resp = client.request(**kwargs)
        except Exception as exc:  # the client refuses to send it: a URL over its length limit
            if type(exc).__name__ != "InvalidURL":
                raise
            tally.refused[type(exc).__name__] += 1
            return
        tally.statuses[resp.status_code] += 1
        if resp.status_code >= 500:
            tally.server_errors.append(f"{case.method} {kwargs['url']} -> {resp.status_code} {resp.text[:300]}")
        if is_write and not with_key and resp.status_code not in (401, 413):
            tally.unauthorised_writes.append(f"{case.method} {kwargs['url']} -> {resp.status_code}")

    run()


def test_generated_requests_never_get_a_server_error(zeroshot_dir: Path, store_url: str, api_key: str) -> None:
    app = create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url))
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == 22  # GET /v1/items/{item}/image joined them (issue 37)
    tally = Tally()
    with TestClient(app, raise_server_exceptions=False) as client:
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fuzz(
                        client,
                        op.as_strategy(generation_mode=mode),
                        (op.method.upper(), op.path) in WRITES,
                        api_key,
                        tally,
                    )
                except Unsatisfiable:  # an operation without parameters has no invalid form
                    assert mode == GenerationMode.NEGATIVE and not list(op.iter_parameters()) and not list(op.body)
    total = sum(tally.statuses.values())
    print(
        f"schemathesis on {store_url.split(':')[0]}: {total} requests, statuses "
        f"{dict(sorted(tally.statuses.items()))}, "
        f"not sent (client refused) {dict(tally.refused)}"
    )
    assert total >= 1_000
    assert tally.server_errors == [], tally.server_errors
    assert tally.unauthorised_writes == []
    assert tally.statuses[401] > 0 and tally.statuses[200] > 0 and tally.statuses[422] > 0


@pytest.mark.parametrize("path", ["/v1/events", "/v1/items/s1", "/v1/users/u0", "/v1/models/v1/activate"])
def test_every_write_endpoint_answers_401_without_a_key(zeroshot_dir: Path, store_url: str, path: str) -> None:
    method = {"/v1/events": "POST", "/v1/items/s1": "PUT", "/v1/users/u0": "DELETE", "/v1/models/v1/activate": "POST"}[
        path
    ]
    with TestClient(create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url))) as client:
        assert client.request(method, path, json={}).status_code == 401
