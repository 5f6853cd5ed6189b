"""fit → recommend / search / similar / evaluate from a saved folder, through the CLI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from tests.models.test_zeroshot import genre_catalog

from anyrec.app.persist import load_model, save_model
from anyrec.cli import cli
from anyrec.models import MODELS
from anyrec.models.registry import build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    ds = genre_catalog()
    folder = tmp_path_factory.mktemp("model")
    model = build_model("zeroshot", 0, {"encoder": "hashing:128"}).fit(ds)
    from anyrec.index import make_index

    index = make_index("HNSW32")
    index.add(range(ds.n_items), model.item_vectors_)
    save_model(model, ds, folder, index)
    return folder


def run(args):
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, (res.output, res.exception)
    return res.output


def test_recommend_json_has_titles_scores_and_contributions(saved):
    data = json.loads(run(["recommend", "--model", str(saved), "--user", "u0", "--k", "3", "--json"]))
    assert len(data["results"]) == 3 and data["user"] == "u0"
    first = data["results"][0]
    assert {"id", "title", "score", "rank", "because"} <= set(first) and first["because"][0]["title"]
    assert all(r["id"].startswith("space") for r in data["results"])  # u0 reads space stories
    assert data["history"]


def test_explain_prints_history_words_sentence_and_draws_the_heat_map(saved, tmp_path):
    png = tmp_path / "why.png"
    data = json.loads(
        run(["explain", "--model", str(saved), "--user", "u0", "--item", "space9", "--json", "--png", str(png)])
    )
    row = data["results"][0]
    assert data["method"] == "text terms" and row["id"] == "space9"
    assert row["because"] and all(b["id"].startswith("space") for b in row["because"])
    assert row["sentence"].startswith("Because you liked") and png.read_bytes()[:4] == b"\x89PNG"
    table = run(["explain", "--model", str(saved), "--user", "u0", "--k", "2"])
    assert "why user u0 gets these" in table
    res = CliRunner().invoke(cli, ["explain", "--model", str(saved), "--user", "u0", "--item", "nope"])
    assert res.exit_code != 0 and "unknown item 'nope'" in str(res.exception)


def test_search_and_similar_json(saved):
    data = json.loads(run(["search", "ghost haunted scream", "--model", str(saved), "--k", "3", "--json"]))
    assert [r["id"][:6] for r in data["results"]] == ["horror"] * 3
    data = json.loads(run(["similar", "--model", str(saved), "--item", "romance0", "--k", "3", "--json"]))
    assert all(r["id"].startswith("romance") and r["id"] != "romance0" for r in data["results"])
    out = run(["search", "ghost", "--model", str(saved), "--user", "u2", "--k", "2"])
    assert "search: ghost" in out


def test_unknown_user_is_a_clear_error(saved):
    res = CliRunner().invoke(cli, ["recommend", "--model", str(saved), "--user", "nobody"])
    assert res.exit_code != 0 and "unknown user 'nobody'" in str(res.exception)


def test_fit_command_writes_a_folder(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text(
        "id,title\n" + "".join(f"{i},{'space robots' if i % 2 else 'love story'} {i}\n" for i in range(10))
    )
    inter = tmp_path / "inter.csv"
    inter.write_text(
        "u,i,t\n" + "".join(f"u{u},{i},{n}\n" for u in range(6) for n, i in enumerate(range(u % 2, 10, 2)))
    )
    out = tmp_path / "m"
    run(
        [
            "fit",
            "--items",
            str(items),
            "--item-id",
            "id",
            "--text",
            "title",
            "--interactions",
            str(inter),
            "--user",
            "u",
            "--item",
            "i",
            "--time",
            "t",
            "--encoder",
            "hashing:64",
            "--no-cache",
            "--out",
            str(out),
        ]
    )
    assert (out / "model.json").exists() and (out / "index" / "index.json").exists()
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"] == "zeroshot" and meta["tuned"]
    res = json.loads(run(["recommend", "--model", str(out), "--user", "u1", "--json", "--k", "2"]))
    assert res["results"]
    ev = run(["evaluate", "--model-dir", str(out), "--models", "popularity,zeroshot", "--k", "2", "--no-progress",
              "--option", "zeroshot.encoder=hashing:64", "--no-cache"])
    assert "zeroshot" in ev and "reusing" in ev


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_saves_and_loads(tmp_path, name, tiny_pretrained):
    ds = genre_catalog()
    opts = {"encoder": "hashing:64"} if name == "zeroshot" else {"factors": 4} if name in ("als", "bpr") else {}
    if name.startswith("transfer"):
        opts = {"init": str(tiny_pretrained), "threads": 1, **({"epochs": 2} if name == "transfer-tuned" else {})}
    if name == "sequential":
        opts = {"encoder": "hashing:32", "hidden": 16, "layers": 1, "epochs": 2, "threads": 1}
    if name == "generative":
        opts = {
            "encoder": "hashing:32",
            "levels": 2,
            "codebook": 4,
            "hidden": 16,
            "layers": 1,
            "heads": 1,
            "epochs": 2,
            "threads": 1,
        }
    model = build_model(name, 0, opts).fit(ds)
    save_model(model, ds, tmp_path)
    again, ds2, _index, meta = load_model(tmp_path)
    users = np.arange(ds.n_users)
    a, b = model.recommend(users, 5), again.recommend(users, 5)
    assert meta["model"] == name and ds2.n_items == ds.n_items
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])


def test_fit_sequential_writes_log_and_checkpoint_then_resumes(tmp_path):
    from tests.models.test_sequential import successor_task

    ds = successor_task()
    rows = ["u,i,t"] + [f"{ds.users.raw(u)},{ds.catalog.ids.raw(i)},{t}" for u, i, t in
                        zip(ds.interactions.user, ds.interactions.item, ds.interactions.time)]
    (tmp_path / "inter.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "seq"
    opts = [
        "--option",
        "sequential.encoder=hashing:16",
        "--option",
        "sequential.hidden=16",
        "--option",
        "sequential.layers=1",
        "--option",
        "sequential.epochs=2",
        "--option",
        "sequential.threads=1",
    ]
    base = ["fit", "--model", "sequential", "--interactions", str(tmp_path / "inter.csv"), "--user", "u", "--item", "i",
            "--time", "t", "--no-cache", "--out", str(out), *opts]
    run(base)
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 2 and (out / "checkpoint.pt").exists()
    run(
        [
            *base[: -len(opts)],
            "--resume",
            "--option",
            "sequential.epochs=3",
            *opts[:-4],
            "--option",
            "sequential.threads=1",
        ]
    )
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 3
    data = json.loads(run(["recommend", "--model", str(out), "--user", ds.users.raw(0), "--json", "--k", "2"]))
    assert len(data["results"]) == 2


def test_k_below_one_is_refused(saved):
    res = CliRunner().invoke(cli, ["recommend", "--model", str(saved), "--user", "u0", "--k", "-5"])
    assert res.exit_code == 2 and "--k" in res.output and "-5" in res.output
    model, _ds, _index, _meta = load_model(saved)
    from anyrec.errors import ConfigError

    with pytest.raises(ConfigError, match="k must be a whole number of at least 1"):
        model.recommend(np.array([0]), k=0)


def test_evaluate_with_k_beyond_a_tiny_catalog_caps_the_list(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,title\na,Alpha\nb,Beta\n")
    (tmp_path / "inter.csv").write_text(
        "user,item,time\n"
        + "".join(f"u{u},{i},{t}\n" for u in range(3) for t, i in enumerate("abab"[u % 2 : u % 2 + 2]))
    )
    out = tmp_path / "r.json"
    run(["evaluate", "--items", str(tmp_path / "items.csv"), "--item-id", "item_id", "--text", "title",
         "--interactions", str(tmp_path / "inter.csv"), "--user", "user", "--item", "item", "--time", "time",
         "--models", "popularity", "--k", "1,10", "--no-progress", "--json", str(out)])
    res = json.loads(out.read_text())["models"]["popularity"]
    assert 0.0 <= res["recall@10"] <= 1.0 and res["precision@10"] <= 0.2


def test_fit_generative_prints_its_codes_resumes_and_fine_tunes_from_a_pretrained_folder(tmp_path):
    from tests.models.test_sequential import successor_task

    ds = successor_task(length=8)
    rows = ["u,i,t"] + [f"{ds.users.raw(u)},{ds.catalog.ids.raw(i)},{t}" for u, i, t in
                        zip(ds.interactions.user, ds.interactions.item, ds.interactions.time)]
    (tmp_path / "inter.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "items.csv").write_text(
        "id,title\n" + "".join(f"{raw},{ds.catalog.title(i)}\n" for i, raw in enumerate(ds.catalog.ids.raw_ids))
    )
    opts = [
        f"--option=generative.{k}"
        for k in (
            "encoder=hashing:16",
            "levels=2",
            "codebook=4",
            "hidden=16",
            "layers=1",
            "heads=1",
            "max_items=4",
            "threads=1",
        )
    ]
    data = ["--interactions", str(tmp_path / "inter.csv"), "--user", "u", "--item", "i", "--time", "t", "--no-cache",
            "--items", str(tmp_path / "items.csv"), "--item-id", "id", "--text", "title"]
    out = run(
        ["fit", "--model", "generative", *data, "--out", str(tmp_path / "g"), *opts, "--option", "generative.epochs=2"]
    )
    flat = " ".join(out.split())
    assert "semantic ids: 20 items" in flat and "collisions:" in flat and "4 / 4" in flat and "ids unique: True" in flat
    assert len((tmp_path / "g" / "train_log.jsonl").read_text().splitlines()) == 2
    run(
        [
            "fit",
            "--model",
            "generative",
            *data,
            "--out",
            str(tmp_path / "g"),
            *opts,
            "--option",
            "generative.epochs=3",
            "--resume",
        ]
    )
    assert len((tmp_path / "g" / "train_log.jsonl").read_text().splitlines()) == 3
    rec = json.loads(
        run(["recommend", "--model", str(tmp_path / "g"), "--user", ds.users.raw(0), "--json", "--k", "3"])
    )
    assert len(rec["results"]) == 3
    run(["fit", "--model", "generative", *data, "--out", str(tmp_path / "ft"), *opts, "--option", "generative.epochs=1",
         "--init", str(tmp_path / "g")])
    assert json.loads((tmp_path / "ft" / "model.json").read_text())["config"]["init"] == str(tmp_path / "g")
    said = run(
        [
            "fit",
            "--model",
            "generative",
            *data,
            "--out",
            str(tmp_path / "ft2"),
            *opts,
            "--option",
            "generative.epochs=1",
            "--pretrained",
            str(tmp_path / "g"),
        ]
    )  # the earlier name still works, and says the new one
    assert "--pretrained is now --init" in said
    # Pretraining across catalogs: the main data plus another one given by a TOML column mapping.
    (tmp_path / "other.toml").write_text(f'''[data]
items = "{tmp_path / 'items.csv'}"
item_id = "id"
text = ["title"]
interactions = "{tmp_path / 'inter.csv'}"
user = "u"
item = "i"
time = "t"
''')
    run(
        [
            "fit",
            "--model",
            "generative",
            *data,
            "--out",
            str(tmp_path / "both"),
            *opts,
            "--option",
            "generative.epochs=1",
            "--also",
            str(tmp_path / "other.toml"),
        ]
    )
    summary = json.loads((tmp_path / "both" / "model.json").read_text())["dataset"]
    assert summary["users"] == 2 * ds.n_users and summary["items"] == 2 * ds.n_items
    bad = CliRunner().invoke(
        cli, ["fit", "--model", "zeroshot", *data, "--out", str(tmp_path / "z"), "--pretrained", str(tmp_path / "g")]
    )
    assert bad.exit_code == 2 and "--init works with sequential, sasrec, transfer and generative" in bad.output


def test_fit_auto_prints_what_it_chose_from_and_saves_the_winner(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text(
        "id,title\n" + "".join(f"{i},{'space robots' if i % 2 else 'love story'} {i}\n" for i in range(12))
    )
    inter = tmp_path / "inter.csv"  # one time for every event: a log without order, so no sequential candidate
    inter.write_text(
        "u,i,t\n" + "".join(f"u{u},{i},0\n" for u in range(20) for i in range(u % 2, 12, 2) if (i + u) % 3)
    )
    out = tmp_path / "auto"
    printed = run(
        [
            "fit",
            "--model",
            "auto",
            "--items",
            str(items),
            "--item-id",
            "id",
            "--text",
            "title",
            "--interactions",
            str(inter),
            "--user",
            "u",
            "--item",
            "i",
            "--time",
            "t",
            "--encoder",
            "hashing:64",
            "--no-cache",
            "--out",
            str(out),
        ]
    )
    flat = " ".join(printed.replace("│", " ").replace("┃", " ").split())  # the table's words, however its cells wrap
    assert "auto chose" in flat and "no usable order" in flat
    meta = json.loads((out / "model.json").read_text())
    assert meta["auto"]["chosen"] == meta["model"] and "sequential" not in meta["auto"]["candidates"]
    assert meta["metrics"]["valid_ndcg@10"] == max(meta["auto"]["validation"].values())
