"""Titles that hold quote-like characters (inch and foot marks, curly quotes, guillemets, HTML entities) never take
down an explanation: every card of every user gets its sentence, through the pipeline and the API (issue 36: a
public catalog's ``Chalkboard, 14&quot; x 14&quot;`` made ``explain=true`` answer 500 for 30 of 200 users)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from anyrec.app import pipeline
from anyrec.app.persist import save_model
from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.explain import SentenceGuard, explain_sentence
from anyrec.models.zeroshot import ZeroShot, ZeroShotConfig
from anyrec.serve import ServeSettings, create_app

TITLES = [
    'Chalkboard, 14" x 14"',
    "Chalkboard, 12&quot; x 12&quot;",
    "Chalkboard 6′ x 4′ (board)",
    "Chalkboard screen 27″",
    "“Chalk” art set",
    "«Chalk» guillemet edition",
    "Chalk 'n' slate",
    'It\'s "chalk", really',
    "Chalk &#39;classic&#39;",
    'Chalkboard "A" and "B" pack',
    "Chalk “left only",
    'Chalk 1/2" sticks',
    "Chalk ‘single’ quotes",
]


def quoted_catalog(users: int = 40, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    b = DatasetBuilder(ReadPolicy(), fields=["title", "text"])
    for i, t in enumerate(TITLES):
        b.add_item(
            f"q{i}", {"title": t, "text": "chalk board classroom slate " + t}, path="items", line=i + 1, field="id"
        )
    row = 2
    for u in range(users):
        for i in rng.choice(len(TITLES), size=5, replace=False):
            b.add_interaction(f"u{u}", f"q{i}", time=float(row), path="inter", line=row)
            row += 1
    return b.build("quotes", template="{title}. {text}")


def test_the_template_passes_its_own_guard_for_every_title() -> None:
    ds = quoted_catalog()
    guard = SentenceGuard(ds.catalog)
    for target in range(ds.n_items):
        cited = [h for h in range(ds.n_items) if h != target][:3]
        sentence, source = explain_sentence(ds.catalog, target, cited, guard)
        assert source == "template" and sentence is not None
        assert all(f"“{ds.catalog.title(h)}”" in sentence for h in cited)
    assert guard.unbuilt == 0 and guard.rejected == 0
    # the guard still refuses a quotation of a title that was not cited
    assert not guard.allows(f"Because you liked “{ds.catalog.title(0)}” and “Some other film”.", {0, 1})


def test_every_card_of_every_user_has_its_sentence(tmp_path: Path, store_url: str, api_key: str) -> None:
    ds = quoted_catalog()
    model = ZeroShot(ZeroShotConfig(encoder="hashing:128")).fit(ds)
    for u in ds.users.raw_ids:  # the pipeline (what `anyrec recommend` and `anyrec explain` show)
        items = np.array([ds.catalog.ids.index(r["id"]) for r in pipeline.recommend(model, ds, u, k=5)])
        _, out = pipeline.explain(model, ds, ds.users.index(u), items, sentences=True)
        assert all(s is not None for s in out["sentence"])
    folder = save_model(model, ds, tmp_path / "quotes")
    with TestClient(create_app(ServeSettings(model_dir=str(folder), store_url=store_url))) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        statuses, sentences = [], []
        for u in ds.users.raw_ids:
            resp = client.get(f"/v1/users/{u}/recommendations", params={"k": 5, "explain": "true"})
            statuses.append(resp.status_code)
            sentences += [card["sentence"] for card in resp.json().get("items", [])]
        assert statuses == [200] * len(ds.users.raw_ids)
        assert sentences and all(isinstance(s, str) and s.startswith("Because you") for s in sentences)
        assert "anyrec_explanations_unbuilt_total 0.0" in client.get("/metrics").text


def test_recommend_json_keeps_every_title_as_written(tmp_path: Path) -> None:
    """``anyrec recommend --json`` for every user: exit 0, valid JSON, each title (and each cited history title)
    exactly as the catalog holds it — no quote escaped twice, no entity decoded, no character lost."""
    import json

    from click.testing import CliRunner

    from anyrec.cli import cli

    ds = quoted_catalog(users=12)
    folder = save_model(ZeroShot(ZeroShotConfig(encoder="hashing:128")).fit(ds), ds, tmp_path / "quotes")
    titles = {ds.catalog.ids.raw(i): ds.catalog.title(i) for i in range(ds.n_items)}
    runner = CliRunner()
    for u in ds.users.raw_ids:
        res = runner.invoke(cli, ["recommend", "--model", str(folder), "--user", u, "--k", "5", "--json"])
        assert res.exit_code == 0, res.output
        rows = json.loads(res.stdout)["results"]
        assert len(rows) == 5 and any(row["because"] for row in rows)
        for row in rows:
            assert row["title"] == titles[row["id"]]
            assert all(c["title"] == titles[c["id"]] for c in row["because"]), row["because"]


@pytest.mark.shared_data
@pytest.mark.parametrize("source, n_users", [("amazon-scientific", 1_000), ("amazon2023-sample", 354)])
def test_the_users_of_real_catalogs_with_inch_marks(shared_data: Path, tmp_path: Path, api_key: str, store_url: str,
                                                   source: str, n_users: int) -> None:
    """Real titles with inch marks and quotes (Scientific: ``4.5” x 7/8-Inch``; the Amazon 2023 sample: 125 titles
    like ``Easter Eggs 2.3" Tall``): 1,000 Scientific users and all 354 of the sample, those whose history holds such
    a title first, served with ``explain=true``: every answer 200, every card with its sentence."""
    from anyrec.cli.common import read_source

    ds = read_source(str(shared_data / source))
    model = ZeroShot(ZeroShotConfig(encoder="hashing:256")).fit(ds)
    folder = save_model(model, ds, tmp_path / source)
    quoted = {i for i in range(ds.n_items) if any(c in ds.catalog.title(i) for c in '"“”«»″')}
    index = ds.interactions.history(ds.n_users)
    users = sorted(range(ds.n_users), key=lambda u: -len(quoted & set(index.of(u).tolist())))[:n_users]
    assert len(users) == n_users and quoted & set(index.of(users[0]).tolist())
    statuses, cards, missing = [], 0, 0
    with TestClient(create_app(ServeSettings(model_dir=str(folder), store_url=store_url))) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        for u in users:
            resp = client.get(f"/v1/users/{ds.users.raw(u)}/recommendations", params={"k": 10, "explain": "true"})
            statuses.append(resp.status_code)
            items = resp.json().get("items", [])
            cards += len(items)
            missing += sum(1 for card in items if not card["sentence"])
    assert [s for s in statuses if s != 200] == [] and cards > 0 and missing == 0
