"""Open-domain transfer: the text-only network pretrained across catalogs scores one it never saw, and a
fine-tune from it starts exactly where the pretrained weights stand; the low-resource protocol."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from tests.models.test_zeroshot import genre_catalog

from anyrec.data.split import leave_one_out, share_of_users
from anyrec.errors import ConfigError
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.experiment import ExperimentConfig, run_experiment
from anyrec.lm.encoder import encode_catalog
from anyrec.models.registry import build_model
from anyrec.models.sequential.config import SequentialConfig
from anyrec.models.sequential.pretrain import Source, pretrain, read_pretrained

NET = {"hidden": 32, "layers": 1, "heads": 2, "max_len": 8, "dropout": 0.0, "lr": 5e-3, "threads": 1, "batch_size": 32}
ENCODER = "hashing:128"


def _source(seed: int) -> Source:
    ds = genre_catalog(n_per=10, n_users=60, per_user=6, seed=seed)
    text = encode_catalog(ds.catalog.texts(), encoder=ENCODER)
    return Source(f"genres-{seed}", text, [q + 1 for q in ds.interactions.sequences(ds.n_users)])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    cfg = SequentialConfig(encoder=ENCODER, epochs=25, patience=25, **NET)
    meta = pretrain([_source(1), _source(2)], cfg, out, valid_users=20)
    assert meta["epochs"] == 25 and {s["name"] for s in meta["sources"]} == {"genres-1", "genres-2"}
    assert sum(s["steps"] for s in meta["sources"]) == meta["steps"] > 0
    return out


def test_the_pretrained_model_scores_a_catalog_it_never_saw(folder):
    target = genre_catalog(
        n_per=10, n_users=45, per_user=6, seed=7
    )  # new titles, new users: nothing of it was pretrained on
    split = leave_one_out(target)
    opts = {"init": str(folder), "text_blend": 0.0, "threads": 1}
    model = build_model("transfer", 0, opts)
    assert not model.learns_from_interactions()
    model.fit(split.train_dataset(target), validate=lambda m: evaluate_model(m, target, split, "valid", (5,))["ndcg@5"])
    assert model.config.hidden == 32 and model.config.encoder.model == ENCODER  # the architecture came from the folder
    _, weights = read_pretrained(folder)
    state = model.net_.state_dict()
    assert all(np.array_equal(state[k].numpy(), v) for k, v in weights.items())  # untouched: no training on the target
    model.set_history(split.history_dataset(target, "test"))
    got = evaluate_model(model, target, split, "test", (5,))["recall@5"]
    pop = evaluate_model(build_model("popularity").fit(split.train_dataset(target)), target, split, "test", (5,))[
        "recall@5"
    ]
    assert got > 0.4 and got > 1.5 * pop


def test_a_fine_tune_starts_from_the_saved_weights(folder):
    target = genre_catalog(n_per=10, n_users=45, per_user=6, seed=8)
    split = leave_one_out(target)

    def valid(m):
        return evaluate_model(m, target, split, "valid", (5,))["ndcg@5"]

    before = build_model("transfer", 0, {"init": str(folder), "threads": 1})
    before.fit(split.train_dataset(target), validate=valid)
    tuned = build_model(
        "sequential", 0, {"init": str(folder), "epochs": 3, "patience": 3, "threads": 1}
    )  # + new id embeddings
    tuned.fit(split.train_dataset(target), validate=valid)
    first = tuned.report_.epochs[0]
    assert first["epoch"] == -1 and first["valid_ndcg@10"] == round(valid(before), 6)
    assert tuned.new_weights_ == ["ids.weight"] and len(tuned.report_.epochs) == 4
    assert tuned.report_.best_valid_ndcg >= first["valid_ndcg@10"]  # a fine-tune never ends below where it started


def test_transfer_without_a_folder_or_with_a_wrong_one_says_so(tmp_path):
    ds = genre_catalog(n_per=8, n_users=6, per_user=4)
    with pytest.raises(ConfigError, match="transfer.init=DIR"):
        build_model("transfer", 0, {}).fit(ds)
    with pytest.raises(ConfigError, match="not a pretrained model folder"):
        build_model("transfer", 0, {"init": str(tmp_path)}).fit(ds)


def test_low_resource_shares_keep_validation_and_test_and_skip_learners_at_zero(folder):
    ds = genre_catalog(n_per=10, n_users=60, per_user=6, seed=9)
    split = leave_one_out(ds)
    train = split.train_dataset(ds)
    part, report = share_of_users(train, 0.1, seed=0)
    users = np.unique(part.interactions.user)
    assert (
        report["users"] == len(users) == 6
        and report["of_users"] == 60
        and report["rows"] == len(part.interactions.user)
    )
    assert share_of_users(train, 0.1, seed=0)[1] == report and share_of_users(train, 0.0, seed=0)[1]["rows"] == 0
    # transfer's popularity prior counts the share's rows, as zero-shot's does; fixed at 0, nothing of it can move
    opts = {"transfer": {"init": str(folder), "threads": 1, "popularity": 0.0}, "zeroshot": {"encoder": ENCODER},
            "sequential": {"encoder": ENCODER, **NET, "epochs": 2}}
    cfg = ExperimentConfig(models=("zeroshot", "transfer", "sequential"), ks=(5,), model_options=opts)
    full = run_experiment(ds, cfg)
    none = run_experiment(ds, ExperimentConfig(**{**cfg.__dict__, "train_share": 0.0}))
    tenth = run_experiment(ds, ExperimentConfig(**{**cfg.__dict__, "train_share": 0.1}))
    assert set(none["models"]) == {"zeroshot", "transfer"} and "sequential" in none["skipped"]
    assert none["split"] == full["split"] == tenth["split"] and tenth["train_share"]["users"] == 6
    # transfer's network learns nothing from the target, so the share cannot move it; the others read everyone's history
    assert none["models"]["transfer"]["ndcg@5"] == full["models"]["transfer"]["ndcg@5"]
    assert tenth["models"]["sequential"]["ndcg@5"] != full["models"]["sequential"]["ndcg@5"]


def test_pretrain_rec_command_writes_a_folder_that_evaluate_reads(tmp_path, monkeypatch):
    from anyrec.cli import cli

    monkeypatch.setenv("ANYREC_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()  # the command reads folders: one in the tables format
    (src / "items.csv").write_text(
        "item_id,title\n" + "".join(f"i{k},The thing {k % 3} number {k}\n" for k in range(12))
    )
    (src / "interactions.csv").write_text("user_id,item_id,time\n" + "".join(
        f"u{u},i{(u + j) % 12},{u * 10 + j}\n" for u in range(20) for j in range(5)))
    config = src / "anyrec.toml"  # a user's own tables, mapped by a TOML config
    config.write_text('[data]\nitems = "items.csv"\nitem_id = "item_id"\ntext = ["title"]\n'
                      'interactions = "interactions.csv"\nuser = "user_id"\nitem = "item_id"\ntime = "time"\n')
    out = tmp_path / "pt"
    args = ["pretrain-rec", "--source", str(config), "--out", str(out), "--encoder", ENCODER, "--epochs", "2",
            "--option", "pretrain.hidden=16", "--option", "pretrain.max_len=6", "--option", "pretrain.threads=1"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "pretrained.json").read_text())
    assert meta["epochs"] == 2 and meta["config"]["hidden"] == 16 and (out / "checkpoint.pt").is_file()
    bad = CliRunner().invoke(cli, [*args[:-2], "--option", "pretrain.use_ids=true"])
    assert bad.exit_code != 0 and "no option(s) use_ids" in bad.output
    res = CliRunner().invoke(
        cli,
        ["evaluate", "--config", str(config), "--models", "transfer", "--init", str(out), "--k", "5", "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    assert "transfer" in res.output
    # day one on a catalog: a version fitted from the folder with no training, saved, and served by `recommend`
    served = tmp_path / "served"
    res = CliRunner().invoke(
        cli, ["fit", "--model", "transfer", "--init", str(out), "--config", str(config), "--out", str(served)]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((served / "model.json").read_text())["config"]["init"] == str(out)
    res = CliRunner().invoke(cli, ["recommend", "--model", str(served), "--user", "u3", "--k", "3", "--json"])
    assert res.exit_code == 0 and len(json.loads(res.output)["results"]) == 3, res.output


def test_events_on_items_without_text_leave_the_pretraining_sequences_counted():
    from anyrec.models.sequential.pretrain import make_source

    texts = ["A red pen", "", "A blue pen", "   "]
    vectors = np.eye(4, dtype=np.float32)
    seqs = [np.array([0, 1, 2]), np.array([3, 1]), np.array([2, 0, 3])]
    source, report = make_source("shop", texts, vectors, seqs)
    assert [s.tolist() for s in source.seqs] == [[1, 3], [], [3, 1]]  # index + 1, blank-text items gone
    assert report == {"events": 8, "events_on_items_without_text": 4, "items_without_text": 2}
    with pytest.raises(ConfigError, match="news: no user has two events on items with text"):
        make_source("news", ["", "x", ""], np.eye(3, dtype=np.float32), [np.array([0, 1, 2]), np.array([2, 0])])
