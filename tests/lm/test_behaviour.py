"""The behaviour-trained encoder (``anyrec pretrain-encoder``): a planted pattern the untrained encoder cannot see
is learnt, the folder is a sentence-transformers folder, and text models read its vectors (not a cache's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.lm.behaviour import BehaviourConfig, BehaviourSource, catalog_loss, heldout_ndcg, train_encoder
from anyrec.lm.encoder import EncoderConfig, TextEncoder
from anyrec.models.registry import build_model

WORDS = (
    "amber",
    "basil",
    "cobalt",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kelp",
    "lumen",
    "maple",
    "nectar",
    "onyx",
    "pepper",
    "quartz",
    "raven",
    "saffron",
    "tundra",
    "umber",
    "velvet",
    "willow",
    "yarrow",
)


def planted(n_users: int = 160, seed: int = 0) -> BehaviourSource:
    """24 items named by unrelated words; every user takes item 0 then item 1 (their texts share nothing), and
    random others around them."""
    rng = np.random.default_rng(seed)
    texts = [f"{w} {w}" for w in WORDS]
    seqs = []
    for _ in range(n_users):
        others = list(rng.choice(np.arange(2, len(texts)), size=4, replace=False))
        at = int(rng.integers(0, 4))
        seqs.append(np.array(others[:at] + [0, 1] + others[at:], dtype=np.int64))
    return BehaviourSource("planted", texts, seqs)


def planted_dataset(source: BehaviourSource) -> Dataset:
    b = DatasetBuilder(ReadPolicy(), fields=["title"])
    for i, t in enumerate(source.texts):
        b.add_item(f"i{i}", {"title": t}, path="items", line=i + 1, field="id")
    row = 0
    for u, q in enumerate(source.seqs):
        for i in q:
            b.add_interaction(f"u{u}", f"i{i}", time=float(row), path="inter", line=row + 2)
            row += 1
    return b.build("planted", template="{title}")


def _rank_of(vectors: np.ndarray, item: int, other: int) -> int:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit[item]
    sims[item] = -np.inf
    return int((sims > sims[other]).sum())


def test_a_planted_pair_with_unrelated_text_ends_up_together(tiny_st: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    source = planted()
    base = TextEncoder(EncoderConfig(model=str(tiny_st))).encode(source.texts)
    cfg = BehaviourConfig(
        encoder=str(tiny_st), rounds=8, round_steps=25, batch_size=32, max_minutes=0, valid_users=20, patience=8
    )
    meta = train_encoder([source], cfg, tmp_path / "enc")
    tuned = SentenceTransformer(str(tmp_path / "enc"), device="cpu").encode(source.texts, normalize_embeddings=True)
    assert _rank_of(base, 0, 1) > 0  # the untrained encoder does not see the pair
    assert _rank_of(tuned, 0, 1) == 0  # after training, item 1 is item 0's nearest item
    losses = [e["loss"] for e in meta["history"] if e["loss"] is not None]
    assert losses[-1] < losses[0]
    assert meta["valid_ndcg@10"]["best"] > meta["valid_ndcg@10"]["as it came"] and meta["best_round"] > 0
    # anyrec's encoder reads the folder as sentence-transformers does
    np.testing.assert_allclose(
        TextEncoder(EncoderConfig(model=str(tmp_path / "enc"))).encode(source.texts), tuned, atol=1e-6
    )
    saved = json.loads((tmp_path / "enc" / "behaviour.json").read_text())
    assert saved["sources"][0]["pairs"] > 0 and (tmp_path / "enc" / "training" / "checkpoint.pt").exists()


def test_resume_continues_the_checkpoint(tiny_st: Path, tmp_path: Path) -> None:
    source = planted(n_users=60)
    cfg = BehaviourConfig(
        encoder=str(tiny_st), rounds=2, round_steps=5, batch_size=16, max_minutes=0, valid_users=10, patience=9
    )
    train_encoder([source], cfg, tmp_path / "enc")
    meta = train_encoder([source], BehaviourConfig(**{**cfg.__dict__, "rounds": 4}), tmp_path / "enc", resume=True)
    assert [e["round"] for e in meta["history"]] == [0, 1, 2, 3, 4] and meta["steps"] == 20


def test_the_loss_is_a_soft_max_over_the_whole_catalog_without_the_history() -> None:
    import torch

    table = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]), dim=-1)
    hists, targets = [np.array([0, 2])], np.array([1])
    prof = torch.nn.functional.normalize(table[[0, 2]].mean(0), dim=0)
    logits = (table @ prof) * 10.0
    logits[[0, 2]] = float("-inf")  # the history leaves the soft-max; the target and item 3 stay
    expected = -torch.log_softmax(logits, 0)[1]
    got = catalog_loss(table, np.zeros(4, dtype=bool), hists, targets, torch.tensor(10.0))
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def test_held_out_ndcg_by_hand() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]])
    # history [0]: item 1 is nearest (rank 0 → gain 1), item 3 next (rank 1 → 1/log2(3)), item 2 last
    assert heldout_ndcg(vectors, [(np.array([0]), 1)]) == pytest.approx(1.0)
    assert heldout_ndcg(vectors, [(np.array([0]), 3)]) == pytest.approx(1 / np.log2(3))
    assert heldout_ndcg(vectors, [(np.array([0]), 3)], unranked=np.array([False, True, False, False])) == pytest.approx(
        1.0
    )


def test_a_zero_shot_fit_with_the_folder_reads_its_vectors_not_the_cached_base(tiny_st: Path, tmp_path: Path) -> None:
    source = planted(n_users=80)
    cache = str(tmp_path / "cache")
    ds = planted_dataset(source)
    base = build_model("zeroshot", 0, {"encoder": {"model": str(tiny_st), "cache_dir": cache}}).fit(ds)
    cfg = BehaviourConfig(encoder=str(tiny_st), rounds=3, round_steps=20, batch_size=32, max_minutes=0, valid_users=10)
    train_encoder([source], cfg, tmp_path / "enc", cache_dir=cache)
    tuned = build_model("zeroshot", 0, {"encoder": {"model": str(tmp_path / "enc"), "cache_dir": cache}}).fit(ds)
    direct = TextEncoder(EncoderConfig(model=str(tmp_path / "enc"))).encode(ds.catalog.texts())
    np.testing.assert_allclose(tuned.item_vectors_, direct, atol=1e-6)
    assert not np.allclose(tuned.item_vectors_, base.item_vectors_, atol=1e-3)


def test_the_command_line(tiny_st: Path, tmp_path: Path) -> None:
    from anyrec.cli import cli

    result = CliRunner().invoke(cli, ["pretrain-encoder", "--source", "ml-100k", "--out", str(tmp_path / "enc"),
                                      "--encoder", str(tiny_st), "--rounds", "1", "--option", "encoder.round_steps=3",
                                      "--option", "encoder.valid_users=50", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "ml-100k: 1,682 items" in result.output and "held-out NDCG@10" in result.output
    bad = CliRunner().invoke(cli, ["pretrain-encoder", "--source", "ml-100k", "--out", str(tmp_path / "x"),
                                   "--option", "encoder.layers=2"])
    assert bad.exit_code != 0 and "no option(s) layers" in bad.output


def test_pretrain_rec_reads_the_behaviour_encoder(tiny_st: Path, tmp_path: Path) -> None:
    """``pretrain-rec --encoder DIR``: the transfer model's pretraining starts from behaviour-aware vectors."""
    from anyrec.cli import cli

    source = planted(n_users=60)
    train_encoder([source], BehaviourConfig(encoder=str(tiny_st), rounds=1, round_steps=5, batch_size=16, max_minutes=0,
                                            valid_users=10), tmp_path / "enc")
    result = CliRunner().invoke(cli, ["pretrain-rec", "--source", "ml-100k", "--out", str(tmp_path / "open"),
                                      "--encoder", str(tmp_path / "enc"), "--epochs", "1", "--valid-users", "50",
                                      "--option", "pretrain.hidden=16", "--option", "pretrain.layers=1",
                                      "--option", "pretrain.heads=1", "--no-cache"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "open" / "pretrained.json").read_text())
    assert meta["config"]["encoder"]["model"] == str(tmp_path / "enc")
