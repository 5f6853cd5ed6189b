"""Key roles: every endpoint × {no key, read, write, admin, revoked} answers as the table says; a key revoked from
the command line is refused on the next request by every worker."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from tests.serve.conftest import Launch
from tests.serve.test_workers import fresh

from anyrec.cli import cli
from anyrec.serve import ServeSettings, create_app
from anyrec.store import Store

# (method, path, body, the role it needs: None = open)
ENDPOINTS: list[tuple[str, str, object, str | None]] = [
    ("GET", "/v1/health", None, None),
    ("GET", "/v1/users/u0/recommendations", None, None),
    ("GET", "/v1/items/s1/similar", None, None),
    ("POST", "/v1/search", {"query": "robots in space"}, None),
    ("GET", "/v1/items/s1", None, None),
    ("GET", "/v1/models", None, None),
    ("GET", "/v1/experiments", None, None),
    ("GET", "/v1/report", None, None),
    ("GET", "/metrics", None, None),
    ("GET", "/openapi.json", None, None),
    ("GET", "/v1/users", None, "read"),
    ("GET", "/v1/users/u0/history", None, "read"),
    ("GET", "/v1/stats", None, "read"),
    ("POST", "/v1/events", {"user": "u0", "item": "s3", "type": "view"}, "write"),
    ("PUT", "/v1/items/new1", {"fields": {"title": "New one", "text": "robot"}}, "admin"),
    ("DELETE", "/v1/items/new1", None, "admin"),
    ("DELETE", "/v1/users/u29", None, "admin"),
    ("POST", "/v1/models/v1/activate", None, "admin"),
    ("PUT", "/v1/experiments/e1", {"variants": [{"name": "a", "model_version": "v1", "share": 1.0}]}, "admin"),
    ("POST", "/v1/experiments/nope/promote", None, "admin"),
]
CALLERS = ("no key", "read", "write", "admin", "revoked")
LEVEL = {"read": 0, "write": 1, "admin": 2}


def expected(needs: str | None, caller: str) -> str:
    if needs is None:
        return "ok"
    if caller in ("no key", "revoked"):
        return "401"
    return "ok" if LEVEL[caller] >= LEVEL[needs] else "403"


def answer(status: int) -> str:
    return str(status) if status in (401, 403) else "ok" if status < 500 else f"5xx {status}"


@pytest.mark.parametrize("read_key", [False, True])
def test_the_role_matrix(zeroshot_dir: Path, store_url: str, read_key: bool) -> None:
    store = Store.open(store_url)
    keys = {role: store.create_key(f"matrix-{role}", role) for role in ("read", "write", "admin")}
    keys["revoked"] = store.create_key("matrix-revoked", "admin")
    store.revoke_key(max(k["id"] for k in store.list_keys()))
    store.close()
    table, wrong = [], []
    with TestClient(
        create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url, read_key=read_key))
    ) as client:
        for method, path, body, needs in ENDPOINTS:
            if read_key and needs is None and path != "/v1/health":
                needs = "read"  # --read-key: every read needs a key, the docs and the metrics included
            row = []
            for caller in CALLERS:
                headers = {"Authorization": f"Bearer {keys[caller]}"} if caller in keys else {}
                got = answer(client.request(method, path, json=body, headers=headers).status_code)
                row.append(got)
                if got != expected(needs, caller):
                    wrong.append(f"{method} {path} as {caller}: {got}, expected {expected(needs, caller)}")
            table.append(
                f"{method:6} {path:34} needs {needs or 'nothing':7} | "
                + " | ".join(f"{c}: {g}" for c, g in zip(CALLERS, row))
            )
    print("\n".join(table))
    assert wrong == []


def test_a_revoked_key_is_refused_on_the_next_request_by_every_worker(zeroshot_dir: Path, store_url: str,
                                                                      launch: Launch) -> None:
    store = Store.open(store_url)
    key = store.create_key("soon-revoked", "write")
    store.close()
    base, _proc, _port = launch(store_url, zeroshot_dir, None, "--workers", "2")
    auth = {"Authorization": f"Bearer {key}"}
    before: dict[str, int] = {}
    for n in range(24):  # new connections: the kernel hands them to either worker; both accept the key
        r = fresh("POST", f"{base}/v1/events", json={"user": f"rv{n}", "item": "s1", "type": "view"}, headers=auth)
        before[r.headers["x-anyrec-worker"]] = r.status_code
    assert set(before.values()) == {200} and len(before) == 2, before
    listed = CliRunner().invoke(cli, ["keys", "list", "--store", store_url])
    assert listed.exit_code == 0 and "soon-revoked" in listed.output and "active" in listed.output
    key_id = next(line.split()[0] for line in listed.output.splitlines() if line.endswith("soon-revoked"))
    revoked = CliRunner().invoke(cli, ["keys", "revoke", key_id, "--store", store_url])
    assert revoked.exit_code == 0, revoked.output
    after: dict[str, set[int]] = {}
    for n in range(24):
        r = fresh("POST", f"{base}/v1/events", json={"user": f"rv{n}", "item": "s2", "type": "view"}, headers=auth)
        after.setdefault(r.headers["x-anyrec-worker"], set()).add(r.status_code)
    assert len(after) == 2 and all(codes == {401} for codes in after.values()), after
    assert "revoked" in CliRunner().invoke(cli, ["keys", "list", "--store", store_url]).output
    bad = CliRunner().invoke(cli, ["keys", "revoke", "9999", "--store", store_url])
    assert bad.exit_code != 0 and "no key with id 9999" in bad.output
    assert httpx.get(f"{base}/v1/health", timeout=30).status_code == 200
