"""The sequential model learns a known sequential rule, is reproducible, resumes, and ranks cold items by text."""

import json

import numpy as np
import pytest
from tests.models.test_zeroshot import genre_catalog

from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.split import cold_item, leave_one_out
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.models.registry import build_model

TINY = {"encoder": "hashing:32", "hidden": 32, "layers": 1, "heads": 2, "max_len": 8, "dropout": 0.0, "id_dropout": 0.0,
        "batch_size": 64, "lr": 5e-3, "threads": 1}


def successor_task(n_items: int = 20, n_users: int = 120, length: int = 6, seed: int = 0):
    """Item i is always followed by item i+1 (mod n)."""
    rng = np.random.default_rng(seed)
    b = DatasetBuilder(ReadPolicy(), fields=["title"])
    for i in range(n_items):
        b.add_item(f"i{i}", {"title": f"thing number {i}"}, path="items", line=i + 1, field="id")
    t = 0
    for u in range(n_users):
        start = int(rng.integers(n_items))
        for j in range(length):
            b.add_interaction(f"u{u}", f"i{(start + j) % n_items}", time=float(t), path="inter", line=t + 2)
            t += 1
    return b.build("successor", template="{title}")


def test_learns_item_i_is_followed_by_i_plus_1():
    ds = successor_task()
    split = leave_one_out(ds)
    model = build_model("sequential", 0, {**TINY, "use_text": False, "epochs": 60, "patience": 60, "lr": 1e-2})
    model.fit(split.train_dataset(ds), validate=lambda m: evaluate_model(m, ds, split, "valid", (1,))["ndcg@1"])
    model.set_history(split.history_dataset(ds, "test"))
    res = evaluate_model(model, ds, split, "test", (1,))
    assert res["recall@1"] > 0.9
    pop = build_model("popularity").fit(split.train_dataset(ds))
    assert evaluate_model(pop, ds, split, "test", (1,))["recall@1"] < 0.2


def test_same_seed_same_metrics_to_four_decimals():
    ds = successor_task(seed=1)
    cfg = ExperimentConfig(models=("sequential",), ks=(5,), model_options={"sequential": {**TINY, "epochs": 4}})
    a, b = run_experiment(ds, cfg), run_experiment(ds, cfg)
    assert round(a["models"]["sequential"]["ndcg@5"], 4) == round(b["models"]["sequential"]["ndcg@5"], 4)
    assert a["models"]["sequential"]["ndcg@5"] == b["models"]["sequential"]["ndcg@5"]


def test_cold_items_are_ranked_from_text():
    ds = genre_catalog(n_users=45)
    split = cold_item(ds, share=0.2, valid_share=0.1, seed=2)
    res = run_experiment(
        ds,
        ExperimentConfig(
            models=("popularity", "sequential"),
            ks=(5,),
            split=None or ExperimentConfig().split,
            model_options={"sequential": {**TINY, "encoder": "hashing:128", "epochs": 15, "max_len": 8}},
        ),
        split=split,
    )
    assert res["models"]["sequential"]["recall@5"] > 1.5 * res["models"]["popularity"]["recall@5"]
    assert res["models"]["sequential"]["recall@5"] > 0.4


def test_training_log_checkpoint_resume_and_budget(tmp_path):
    ds = successor_task(seed=2)
    opts = {**TINY, "epochs": 3, "patience": 10, "log_dir": str(tmp_path)}
    model = build_model("sequential", 0, opts).fit(ds)  # no validation split: holds out each user's last item
    lines = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [0, 1, 2] and all("valid_ndcg@10" in x and "loss" in x for x in lines)
    assert (tmp_path / "checkpoint.pt").exists() and len(model.report_.epochs) == 3
    resumed = build_model("sequential", 0, {**opts, "epochs": 5, "resume": True}).fit(ds)
    lines = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [0, 1, 2, 3, 4] and len(resumed.report_.epochs) == 2
    budget = build_model("sequential", 0, {**TINY, "epochs": 50, "max_minutes": 1e-6}).fit(ds)
    assert len(budget.report_.epochs) == 1


def test_sampled_softmax_trains():
    ds = successor_task(seed=3)
    split = leave_one_out(ds)
    model = build_model(
        "sequential", 0, {**TINY, "use_text": False, "epochs": 40, "patience": 40, "sampled_softmax": 8}
    )
    model.fit(split.train_dataset(ds), validate=lambda m: evaluate_model(m, ds, split, "valid", (1,))["ndcg@1"])
    assert evaluate_model(model, ds, split, "valid", (3,))["recall@3"] > 0.5


def test_sampled_softmax_on_the_batch_items_equals_it_on_the_whole_table():
    """The trainer computes representations for the batch's items and the negatives only; the loss
    is the one over the whole catalog's table with the same negatives."""
    import torch

    from anyrec.models.sequential import SequentialConfig
    from anyrec.models.sequential.network import build_network
    from anyrec.models.sequential.training import softmax_loss

    torch.manual_seed(0)
    n, dim = 30, 16
    cfg = SequentialConfig(hidden=8, heads=2, layers=1, max_len=6, experts=2)
    text = torch.randn(n, dim)
    net = build_network(n, dim, cfg, text.numpy())
    seen, keep = (torch.rand(n) > 0.2).float(), (torch.rand(n) > 0.1).float()
    index = torch.tensor([3, 7, 11, 29])
    full = net.items(text, seen, keep)
    sub = net.items(text, seen, keep, index)
    assert torch.allclose(sub[1:], full[index + 1]) and torch.equal(sub[0], full[0])
    h = torch.randn(5, 8)
    y, neg = torch.tensor([3, 7, 7, 29, 11]), torch.tensor([11, 3, 29])
    local = {int(i): r for r, i in enumerate(index)}
    as_local = lambda t: torch.tensor([local[int(i)] for i in t])  # noqa: E731
    t = cfg.temperature
    whole = softmax_loss(h, y, full[1:], neg, n, t)
    batch_only = softmax_loss(h, as_local(y), sub[1:], as_local(neg), n, t)
    assert torch.allclose(whole, batch_only)
    assert not torch.allclose(whole, softmax_loss(h, y, full[1:], None, n, t))  # not the full softmax


@pytest.mark.parametrize("flags", [{"use_ids": False}, {"use_text": False}])
def test_either_representation_alone_works(flags):
    ds = successor_task(seed=4)
    model = build_model("sequential", 0, {**TINY, **flags, "epochs": 2}).fit(ds)
    ids, _ = model.recommend(np.arange(3), k=3)
    assert (ids >= 0).all()


@pytest.mark.slow
def test_encoder_fine_tuning_moves_the_top_layer_and_saves_a_usable_encoder(tmp_path):
    from anyrec.lm.encoder import EncoderConfig, TextEncoder
    from anyrec.lm.toplayers import vectors_agree

    ds = successor_task(n_items=12, n_users=40, seed=5)
    split = leave_one_out(ds)
    opts = {**TINY, "encoder": "default", "use_ids": False, "epochs": 3, "patience": 3, "finetune_layers": 1,
            "finetune_lr": 1e-3, "finetune_tokens": 16, "log_dir": str(tmp_path)}
    model = build_model("sequential", 0, opts)
    model.fit(split.train_dataset(ds), validate=lambda m: evaluate_model(m, ds, split, "valid", (5,))["ndcg@5"])
    tuned, pretrained = model.text_vectors_, model.pretrained_vectors_
    assert tuned.shape == pretrained.shape == (12, 384)
    assert vectors_agree(tuned, pretrained) < 0.999  # the encoder's top layer was trained
    # The saved encoder is a sentence-transformers folder that reproduces the tuned vectors.
    again = TextEncoder(EncoderConfig(model=str(tmp_path / "encoder"), max_length=16)).encode(ds.catalog.texts())
    assert vectors_agree(again, tuned) > 0.999
    assert evaluate_model(model, ds, split, "valid", (5,))["ndcg@5"] == pytest.approx(model.report_.best_valid_ndcg)


def test_encoder_fine_tuning_refuses_the_hashing_encoder():
    from anyrec.errors import ConfigError

    with pytest.raises(ConfigError, match="hashing"):
        build_model("sequential", 0, {**TINY, "finetune_layers": 1, "epochs": 1}).fit(successor_task(seed=6))


def test_text_blend_reads_the_whole_history_and_half_life_zero_weighs_all_equally():
    ds = successor_task(n_items=12, n_users=30, length=5, seed=7)
    model = build_model("sequential", 0, {**TINY, "epochs": 1}).fit(ds)
    long = np.arange(1, 13)  # item indices + 1, longer than max_len (8)
    model.config = type(model.config)(**{**model.config.__dict__, "half_life": 0.0})
    text = model.text_vectors_ / np.linalg.norm(model.text_vectors_, axis=1, keepdims=True)
    prof = text.sum(0) / np.linalg.norm(text.sum(0))
    np.testing.assert_allclose(model._text_similarity([long])[0], text @ prof, rtol=1e-5, atol=1e-6)
    model.config = type(model.config)(**{**model.config.__dict__, "half_life": 1.0})
    recent = model._text_similarity([long])[0]
    assert np.argmax(recent) == 11  # the last item weighs most


def test_sasrec_is_the_same_trainer_without_text():
    ds = successor_task()
    split = leave_one_out(ds)
    opts = {k: v for k, v in TINY.items() if k != "encoder"}
    model = build_model("sasrec", 0, {**opts, "epochs": 60, "patience": 60, "lr": 1e-2})
    assert model.config.use_text is False and model.config.use_ids is True
    model.fit(split.train_dataset(ds), validate=lambda m: evaluate_model(m, ds, split, "valid", (1,))["ndcg@1"])
    assert model.net_.adaptor is None  # no text path at all
    model.set_history(split.history_dataset(ds, "test"))
    assert evaluate_model(model, ds, split, "test", (1,))["recall@1"] > 0.9


def test_training_grid_gives_every_model_the_same_number_of_fits():
    from anyrec.eval.flow import search_training_grid, validator
    from anyrec.models import MODELS

    assert MODELS["sasrec"].training_grid == MODELS["sequential"].training_grid
    # score time: the same popularity prior; the text terms only where there is text
    assert MODELS["sasrec"].tuning_grid == {"popularity": MODELS["sequential"].tuning_grid["popularity"]}
    ds = successor_task(seed=2)
    split = leave_one_out(ds)
    grid = MODELS["sasrec"].training_grid
    opts = {k: v for k, v in TINY.items() if k not in ("encoder", "dropout")}
    model, chosen = search_training_grid("sasrec", 0, {**opts, "epochs": 3, "hidden": 32}, split.train_dataset(ds),
                                         validator(ds, split, 10))
    # hidden was given, so it is not searched: 1 start + the other dropout and lr values.
    assert chosen["training_fits"] == 1 + (len(grid["dropout"]) - 1) + (len(grid["lr"]) - 1)
    assert "hidden" not in chosen and model.config.hidden == 32
    best = max(f["valid"] for f in chosen["training_grid_valid"])
    assert chosen["valid_training_ndcg"] == pytest.approx(best)
    assert model.config.dropout == next(f["dropout"] for f in chosen["training_grid_valid"] if f["valid"] == best)


def test_length_buckets_cover_every_window_once_and_still_learn():
    from anyrec.models.sequential.training import epoch_batches, windows

    ds = successor_task(seed=3)
    torch = pytest.importorskip("torch")
    data = torch.from_numpy(windows([np.arange(1, n + 2) for n in (1, 3, 5, 7, 2, 4, 6, 8, 3)], TINY["max_len"]))
    batches = epoch_batches(torch.randperm(len(data)), data, torch.Generator().manual_seed(0), 4, by_length=True)
    assert sorted(torch.cat(batches).tolist()) == list(range(len(data)))
    split = leave_one_out(ds)
    model = build_model("sasrec", 0, {**{k: v for k, v in TINY.items() if k != "encoder"}, "bucket_by_length": True,
                                      "epochs": 60, "patience": 60, "lr": 1e-2})
    model.fit(split.train_dataset(ds), validate=lambda m: evaluate_model(m, ds, split, "valid", (1,))["ndcg@1"])
    model.set_history(split.history_dataset(ds, "test"))
    assert evaluate_model(model, ds, split, "test", (1,))["recall@1"] > 0.8  # popularity: < 0.2


def test_options_left_to_the_data_follow_the_catalog_and_the_log_and_given_ones_win():
    from anyrec.models.sequential.config import SequentialConfig, sized_for

    big, chosen = sized_for(SequentialConfig(), 12_101, [4, 6, 9] * 20_000)  # Beauty-like: many items, short histories
    assert (big.sampled_softmax, big.bucket_by_length, big.batch_size) == (1024, True, 256)
    assert "12,101 items > 8,192" in chosen["sampled_softmax"] and "60,000 training windows" in chosen["batch_size"]
    assert big.max_minutes == 9.0 and "max_minutes=0 trains to early stopping" in chosen["max_minutes"]
    assert big.search_minutes == 2.0 and "keeps the best point it reached" in chosen["search_minutes"]
    small, chosen = sized_for(SequentialConfig(), 1_682, [50, 50, 12] * 300)  # ml-100k-like
    assert (small.sampled_softmax, small.bucket_by_length, small.batch_size) == (0, False, 128)
    assert "full softmax" in chosen["sampled_softmax"] and small.max_minutes == 0.0 and small.search_minutes == 0.0
    given, chosen = sized_for(SequentialConfig(sampled_softmax=0, bucket_by_length=False, batch_size=64, max_minutes=0,
                                               search_minutes=0), 50_000, [3] * 90_000)
    assert (
        given.sampled_softmax,
        given.bucket_by_length,
        given.batch_size,
        given.max_minutes,
        given.search_minutes,
    ) == (0, False, 64, 0, 0) and chosen == {}


def test_a_fit_says_what_it_chose_and_keeps_the_concrete_settings():
    ds = successor_task()
    notes: list[tuple[str, int, int]] = []
    model = build_model("sequential", 0, {k: v for k, v in TINY.items() if k != "batch_size"} | {"epochs": 1})
    model.progress = lambda d, done, total: notes.append((d, done, total))
    model.fit(ds)
    said = [d for d, done, total in notes if done == total == 0]
    assert len(said) == 1 and "batch_size=128" in said[0] and "sampled_softmax=0" in said[0]
    assert (
        model.config.batch_size == 128
        and model.config.sampled_softmax == 0
        and model.config.bucket_by_length is not None
    )


def test_warm_up_and_cosine_schedule_the_rate_and_ligr_blocks_learn_the_successor_rule():
    from anyrec.errors import ConfigError
    from anyrec.models.sequential.config import SequentialConfig
    from anyrec.models.sequential.training import set_learning_rate

    class Opt:
        param_groups = [{"lr": 1e-3}]

    cfg = SequentialConfig(warmup_steps=10, lr_schedule="cosine", epochs=2)
    rates = []
    for step in range(0, 60):
        set_learning_rate(Opt, cfg, step, 30)  # 2 epochs of 30 steps: warm-up 10, then half a cosine over 50
        rates.append(Opt.param_groups[0]["lr"])
    assert np.isclose(rates[0], 1e-4) and np.isclose(rates[9], 1e-3) and np.isclose(rates[35], 5e-4, rtol=0.05)
    assert rates[59] < 1e-5 and all(a >= b for a, b in zip(rates[9:], rates[10:]))  # up, then only down
    ds = successor_task()
    split = leave_one_out(ds)
    model = build_model(
        "sasrec", 0, {**TINY, "block": "ligr", "epochs": 60, "patience": 60, "lr": 1e-2, "warmup_steps": 5}
    )
    model.fit(split.train_dataset(ds), validate=lambda m: evaluate_model(m, ds, split, "valid", (1,))["ndcg@1"])
    model.set_history(split.history_dataset(ds, "test"))
    assert evaluate_model(model, ds, split, "test", (1,))["recall@1"] > 0.9
    with pytest.raises(ConfigError, match="block='gru'; choose one of prenorm, ligr"):
        build_model("sequential", 0, {**TINY, "block": "gru"}).fit(ds)
