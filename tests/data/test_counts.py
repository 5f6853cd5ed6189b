"""Counts are not ratings (issue 35): a weight column of plays, purchases or minutes is read as confidence (log or
BM25, chosen on validation) by the models that can, never mapped onto a rating scale; a rating column that no
scale reads is met with a message that points to ``--weight``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anyrec.cli import cli
from anyrec.data.table import ColumnMapping
from anyrec.data.table import read_table_dataset as load_table
from anyrec.errors import MalformedRowError
from anyrec.models.registry import build_model

PLAYS = [("a", "0", 1), ("a", "1", 40), ("b", "1", 3), ("b", "2", 1), ("c", "0", 7), ("c", "2", 1), ("c", "3", 1000),
         ("a", "1", 10)]  # a repeated pair: its counts add up (40 + 10)


def write(tmp_path: Path, rows=PLAYS, header: str = "user,item,plays") -> ColumnMapping:
    (tmp_path / "items.csv").write_text("id,title\n" + "".join(f"{i},Song {i}\n" for i in range(4)))
    (tmp_path / "plays.csv").write_text(header + "\n" + "".join(f"{u},{i},{c}\n" for u, i, c in rows))
    return ColumnMapping(interactions=str(tmp_path / "plays.csv"), user="user", item="item", weight="plays",
                         items=str(tmp_path / "items.csv"), item_id="id", text=("title",))


def test_a_weight_column_is_read_as_counts_and_weighted_by_hand(tmp_path: Path) -> None:
    ds = load_table(write(tmp_path))
    assert ds.interactions.rating is None and ds.interactions.weight is not None
    u, i = ds.users.index("a"), ds.catalog.ids.index("1")
    binary = ds.interactions.confidence(ds.n_users, ds.n_items, "binary").toarray()
    log = ds.interactions.confidence(ds.n_users, ds.n_items, "log").toarray()
    assert binary[u, i] == 1.0 and log[u, i] == pytest.approx(np.log2(51.0))  # 40 + 10 plays
    assert log[ds.users.index("a"), ds.catalog.ids.index("0")] == pytest.approx(1.0)  # one play weighs 1
    bm25 = ds.interactions.confidence(ds.n_users, ds.n_items, "bm25").toarray()
    counts = np.zeros((3, 4))
    for uu, ii, c in PLAYS:
        counts[ds.users.index(uu), ds.catalog.ids.index(ii)] += c
    df = (counts > 0).sum(axis=0)
    idf = np.log(3) - np.log1p(df)
    length = counts.sum(axis=1)
    norm = 0.2 + 0.8 * length / length.mean()
    expected = np.where(counts > 0, counts * 101.0 / (100.0 * norm[:, None] + counts) * idf[None, :], 0.0)
    np.testing.assert_allclose(bm25, expected / expected[counts > 0].mean(), rtol=1e-5, atol=1e-6)


def test_a_negative_count_names_its_file_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(MalformedRowError, match=r"weight '-3' is negative") as err:
        load_table(write(tmp_path, rows=[("a", "0", 1), ("b", "1", -3)]))
    assert err.value.line == 3 and err.value.field == "plays" and "plays.csv" in str(err.value.path)


def test_ease_and_zeroshot_read_the_counts(tmp_path: Path) -> None:
    ds = load_table(write(tmp_path))
    said: list[str] = []
    ease = build_model("ease", 0, {"l2": 1.0}).fit(ds, progress=lambda d, a, b: said.append(d))
    assert ease.report_.sized["weighting"].startswith("log") and any("weighting=log" in s for s in said)
    x = ds.interactions.confidence(ds.n_users, ds.n_items, "log").toarray().astype(float)
    b = np.zeros((4, 4))
    for j in range(4):  # EASE by hand on the log-weighted matrix
        others = [i for i in range(4) if i != j]
        b[others, j] = np.linalg.solve(x[:, others].T @ x[:, others] + np.eye(3), x[:, others].T @ x[:, j])
    np.testing.assert_allclose(ease.weights(), b, atol=1e-8)
    binary = build_model("ease", 0, {"l2": 1.0, "weighting": "binary"}).fit(ds)
    assert not np.allclose(binary.weights(), b)
    vectors = np.eye(4, dtype=np.float32)
    zs = build_model("zeroshot", 0, {"short_term": 0.0})
    zs.use_item_vectors(vectors)
    zs.fit(ds)
    profile = zs.history_weights().toarray()[ds.users.index("c")]  # c: 7 plays of 0, 1 of 2, 1000 of 3
    got = profile[[ds.catalog.ids.index(i) for i in ("0", "2", "3")]]
    np.testing.assert_allclose(got / got[1], [np.log2(8.0), 1.0, np.log2(1001.0)], rtol=1e-5)
    with pytest.raises(Exception, match="zeroshot.weighting is one of binary, log"):
        build_model("zeroshot", 0, {"weighting": "bm25"}).fit(ds)


def test_the_search_tries_each_weighting_only_where_the_log_has_counts(tmp_path: Path) -> None:
    from anyrec.eval.flow import training_grid

    ds = load_table(write(tmp_path))
    assert training_grid("als", ds)["weighting"] == ["binary", "log", "bm25"]
    assert training_grid("zeroshot", ds)["weighting"] == ["binary", "log"]
    assert "weighting" not in training_grid("bpr", ds)  # pairs, not amounts
    plain = load_table(ColumnMapping(interactions=str(tmp_path / "plays.csv"), user="user", item="item"))
    assert "weighting" not in training_grid("als", plain)


def test_evaluate_with_weight_and_the_message_for_counts_given_as_ratings(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", str(i), int(rng.integers(1, 3000))) for u in range(30) for i in rng.choice(4, size=3, replace=False)
    ]
    write(tmp_path, rows=rows)
    data = [
        "--items",
        str(tmp_path / "items.csv"),
        "--item-id",
        "id",
        "--text",
        "title",
        "--interactions",
        str(tmp_path / "plays.csv"),
        "--user",
        "user",
        "--item",
        "item",
        "--no-progress",
    ]
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        cli,
        [
            "evaluate",
            *data,
            "--weight",
            "plays",
            "--models",
            "popularity,als",
            "--protocol",
            "ratio",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["tuned"]["als"]["weighting"] in ("binary", "log", "bm25") and doc["tuned"]["als"]["training_fits"] == 3
    as_rating = CliRunner().invoke(
        cli, ["evaluate", *data, "--rating", "plays", "--models", "popularity", "--protocol", "ratio"]
    )
    assert as_rating.exit_code == 0, as_rating.output
    said = " ".join(as_rating.output.split())  # (the console wraps lines)
    assert "the rating column ranges" in said and "no rating scale reads that" in said and "--weight COLUMN" in said


def test_a_saved_folder_keeps_the_counts(tmp_path: Path) -> None:
    from anyrec.app.persist import load_model, save_model

    ds = load_table(write(tmp_path))
    zs = build_model("zeroshot", 0, {"short_term": 0.0})
    zs.use_item_vectors(np.eye(4, dtype=np.float32))
    zs.fit(ds)
    back, back_ds, _, _ = load_model(save_model(zs, ds, tmp_path / "zs"))
    np.testing.assert_array_equal(back_ds.interactions.weight, ds.interactions.weight)
    np.testing.assert_allclose(back.history_weights().toarray(), zs.history_weights().toarray(), rtol=1e-6)
