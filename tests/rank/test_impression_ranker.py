"""The click classifier under the impression protocol: shown-not-clicked items are its negatives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tests.rank.test_rank import tiny_encoder

from anyrec.data.builder import ReadPolicy
from anyrec.data.formats_json import load_mind
from anyrec.data.impressions import read_mind_impressions


def mind_folder(folder: Path, rows: int = 120, users: int = 24) -> Path:
    """Interest drift: every user's history is politics news (so popularity ranks politics first), but
    in every impression they click the one sports item shown and skip the three politics items. Only
    the shown-not-clicked items tell the classifier what changed."""
    folder.mkdir(parents=True, exist_ok=True)
    news = [
        f"N{i}\t{'sports' if i % 2 else 'politics'}\tsub\t{'Match report goal' if i % 2 else 'Election vote news'} "
        f"{i}\tabstract"
        f"\turl\t[]\t[]"
        for i in range(16)
    ]
    (folder / "news.tsv").write_text("\n".join(news) + "\n")
    politics, sports = list(range(0, 16, 2)), list(range(1, 16, 2))
    lines = []
    for n in range(rows):
        stamp = f"11/{10 + n // 40}/2019 {1 + (n % 40) // 4}:{(n % 4) * 10:02d}:00 AM"
        shown = [politics[(n + j) % 8] for j in range(3)]
        lines.append(
            f"{n}\tU{n % users}\t{stamp}\t{' '.join(f'N{i}' for i in politics)}\tN{sports[(n // users) % 8]}-1 "
            + " ".join(f"N{i}-0" for i in shown)
        )
    (folder / "behaviors.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_pairs_take_their_negatives_from_the_same_impression_and_history_from_before_it(tmp_path: Path) -> None:
    from anyrec.rank.cross import ClickClassifier
    from anyrec.rank.cross_config import ClickClassifierConfig
    from anyrec.rank.impressions import impression_pairs

    folder = mind_folder(tmp_path / "mind", rows=24)
    ds = load_mind(folder, ReadPolicy())
    imps, _ = read_mind_impressions(folder, ds)
    clf = ClickClassifier(ds.catalog, ClickClassifierConfig(history=10))
    hist = ds.interactions.history(ds.n_users)
    lefts, items, labels = impression_pairs(clf, hist, imps, negatives=2, seed=0)
    assert labels.sum() == sum(int(i.labels.sum()) for i in imps) and len(labels) == 3 * labels.sum()
    at = 0
    for imp in imps:
        n = int(imp.labels.sum()) * 3
        assert set(items[at : at + n][labels[at : at + n] == 0]) <= set(imp.items[imp.labels == 0].tolist())
        before = hist.before(imp.user, imp.time)
        inter = ds.interactions
        mine = np.flatnonzero((inter.user == imp.user) & (inter.time < imp.time))
        assert np.array_equal(before, inter.item[mine[np.argsort(inter.time[mine], kind="stable")]]) and len(before)
        assert lefts[at] == clf.left(before)
        at += n


def test_evaluate_trains_the_classifier_on_impressions_and_adds_its_row(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from anyrec.cli import cli

    folder = mind_folder(tmp_path / "mind")
    enc = tiny_encoder(tmp_path / "enc")
    res = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--dataset",
            str(folder),
            "--protocol",
            "impressions",
            "--models",
            "popularity",
            "--ranker",
            "classifier",
            "--no-progress",
            "--json",
            str(tmp_path / "out.json"),
            "--option",
            f"ranker.encoder={enc}",
            "--option",
            "ranker.epochs=5",
            "--option",
            "ranker.lr=2e-3",
            "--option",
            "ranker.batch_size=16",
            "--option",
            "ranker.patience=5",
            "--option",
            "ranker.negatives=3",
            "--option",
            "ranker.threads=1",
            "--option",
            "ranker.device=cpu",
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    models = json.loads((tmp_path / "out.json").read_text())["models"]
    ranked, alone = models["popularity→classifier"], models["popularity"]
    assert ranked["impressions"] == alone["impressions"] > 0
    assert ranked["ranker"]["pairs"] > 0 and ranked["ranker"]["valid_impressions"] > 0
    assert alone["auc"] < 0.2 and ranked["auc"] > 0.9
    assert "shown-not-clicked as negatives" in res.output
