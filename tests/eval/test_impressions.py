"""MIND's impression metrics against hand-computed values, and the protocol on a tiny fixture."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anyrec.data.impressions import Impression
from anyrec.eval.impressions import auc, evaluate_impressions, impression_metrics, mrr, ndcg


def test_metrics_by_hand() -> None:
    labels = np.array([0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.1])  # ranks: clicked items at 2 and 4
    # AUC: pairs (clicked, not): 0.8 beats 0.3, 0.1, loses to 0.9; 0.2 beats 0.1 only -> 3 of 6
    assert auc(labels, scores) == pytest.approx(3 / 6)
    assert mrr(labels, scores) == pytest.approx((1 / 2 + 1 / 4) / 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg(labels, scores, 5) == pytest.approx(dcg / ideal)
    assert ndcg(labels, scores, 2) == pytest.approx((1 / math.log2(3)) / ideal)
    assert auc(np.array([1, 0, 0]), np.array([0.5, 0.5, 0.1])) == pytest.approx(0.75)  # a tie counts one half
    perfect = impression_metrics(np.array([1, 0, 0]), np.array([3.0, 2.0, 1.0]))
    assert perfect == {"auc": 1.0, "mrr": 1.0, "ndcg@5": 1.0, "ndcg@10": 1.0}


def test_protocol_averages_over_impressions(board) -> None:
    from anyrec.models.baselines import Popularity

    model = Popularity().fit(board)
    counts = model.counts_
    best, worst = int(np.argmax(counts)), int(np.argmin(counts))
    imps = [Impression(0, np.array([best, worst]), np.array([1, 0]), 1.0),
            Impression(1, np.array([best, worst]), np.array([0, 1]), 2.0)]
    res = evaluate_impressions(model, imps)
    assert res["impressions"] == 2 and res["auc"] == pytest.approx(0.5) and res["mrr"] == pytest.approx((1 + 0.5) / 2)


def test_evaluate_cli_runs_the_impression_protocol_on_a_mind_folder(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from anyrec.cli import cli

    news = [
        f"N{i}\t{'sports' if i % 2 else 'politics'}\tsub\t{'Match report' if i % 2 else 'Election news'} "
        f"{i}\tabstract {i}\turl\t[]\t[]"
        for i in range(8)
    ]
    (tmp_path / "news.tsv").write_text("\n".join(news) + "\n")
    rows = []
    for n in range(20):  # sports fans (odd users) click odd news; the popular N1 is clicked most
        user = f"U{n % 4}"
        clicked, shown = (1, 3) if n % 4 % 2 else (0, 2)
        rows.append(
            f"{n}\t{user}\t11/{10 + n // 10}/2019 {1 + n % 10}:00:00 AM\tN{clicked + 4}\tN{clicked}-1 N{shown + 4}-0 "
            f"N{7 - clicked}-0"
        )
    (tmp_path / "behaviors.tsv").write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--dataset",
            str(tmp_path),
            "--protocol",
            "impressions",
            "--models",
            "popularity,itemknn",
            "--json",
            str(tmp_path / "out.json"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["protocol"] == "impressions" and result["test_impressions"] == 4
    for m in result["models"].values():
        assert m["impressions"] == 4 and 0 <= m["auc"] <= 1 and 0 < m["mrr"] <= 1
    assert "AUC" in res.output
    bad = CliRunner().invoke(
        cli, ["evaluate", "--dataset", "ml-100k", "--protocol", "impressions", "--models", "popularity"]
    )
    assert bad.exit_code != 0 and "behaviors.tsv" in bad.output
