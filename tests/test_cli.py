import json

import pytest
from click.testing import CliRunner

from anyrec.cli import cli, main


def _write_tables(tmp_path):
    (tmp_path / "items.csv").write_text(
        "id,title,genres\n" + "".join(f"{i},Film {i},{'A' if i % 2 else 'B'}\n" for i in range(12))
    )
    rows = ["uid,iid,ts,r"]
    for u in range(10):
        own = list(range(u % 2, 12, 2))
        own = own[u % 6 :] + own[: u % 6]  # each user meets their items in another order
        for j, i in enumerate(own):
            rows.append(f"u{u},{i},{j},{1 + (i % 5)}")
    (tmp_path / "inter.csv").write_text("\n".join(rows) + "\n")


def test_evaluate_with_column_mapping_writes_json_and_plot(tmp_path):
    _write_tables(tmp_path)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    res = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--items",
            str(tmp_path / "items.csv"),
            "--item-id",
            "id",
            "--text",
            "title,genres",
            "--interactions",
            str(tmp_path / "inter.csv"),
            "--user",
            "uid",
            "--item",
            "iid",
            "--time",
            "ts",
            "--rating",
            "r",
            "--models",
            "popularity,itemknn,bias",
            "--k",
            "3,5",
            "--json",
            str(out),
            "--plot",
            str(png),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["protocol"] == "loo" and data["dataset"]
    assert set(data["models"]) == {"popularity", "itemknn", "bias"}
    for m in data["models"].values():
        assert {"ndcg@3", "recall@5", "mrr@5", "map@3", "f1@5", "coverage@3", "fit_seconds"} <= set(m)
    assert "rmse" in data["models"]["bias"]
    assert data["models"]["itemknn"]["ndcg@5"] > data["models"]["popularity"]["ndcg@5"]
    assert png.stat().st_size > 1000
    assert "itemknn" in res.output


def test_evaluate_from_toml_config(tmp_path):
    _write_tables(tmp_path)
    (tmp_path / "c.toml").write_text(
        '[data]\nitems = "items.csv"\nitem_id = "id"\ntext = ["title"]\n'
        'interactions = "inter.csv"\nuser = "uid"\nitem = "iid"\ntime = "ts"\n'
        '[evaluate]\nmodels = ["itemknn"]\nk = [2]\n[models.itemknn]\nk = 3\n'
    )
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        cli, ["evaluate", "--config", str(tmp_path / "c.toml"), "--json", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert list(json.loads(out.read_text())["models"]) == ["itemknn"]


def test_the_evaluate_table_is_the_experiment_config_and_the_command_line_goes_over_it(tmp_path):
    from anyrec.config import experiment_config, load_config
    from anyrec.errors import ConfigError

    _write_tables(tmp_path)
    data = ('[data]\nitems = "items.csv"\nitem_id = "id"\ntext = ["title"]\ninteractions = "inter.csv"\nuser = "uid"\n'
            'item = "iid"\ntime = "ts"\n')
    (tmp_path / "c.toml").write_text(
        data + '[evaluate]\nmodels = "itemknn,popularity"\nk = [2, 3]\nprotocol = "ratio"\n'
        'valid = 0.2\ntune = false\nmask = "none"\nreport_untuned = true\n'
    )
    cfg = experiment_config(load_config(tmp_path / "c.toml").evaluate)
    assert cfg.models == ("itemknn", "popularity") and cfg.ks == (2, 3) and cfg.split.protocol == "ratio"
    assert cfg.split.valid == 0.2 and cfg.tune is False and cfg.mask == "none" and cfg.report_untuned is True
    out = tmp_path / "r.json"
    res = CliRunner().invoke(cli, ["evaluate", "--config", str(tmp_path / "c.toml"), "--mask", "history", "--k", "2",
                                   "--json", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert (
        result["mask"] == "history" and result["protocol"] == "ratio" and result["ks"] == [2]
    )  # the command line wins
    assert (
        list(result["models"]) == ["itemknn", "popularity"] and "tuned" not in result
    )  # models and tune=false from the file
    (tmp_path / "bad.toml").write_text(data + '[evaluate]\ntune = "no"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: \[evaluate\]: tune = 'no'; a bool is expected"):
        load_config(tmp_path / "bad.toml")


def test_bad_input_exits_2_with_message(tmp_path, monkeypatch, capsys):
    _write_tables(tmp_path)
    monkeypatch.setattr(
        "sys.argv",
        [
            "anyrec",
            "evaluate",
            "--interactions",
            str(tmp_path / "inter.csv"),
            "--user",
            "userid",
            "--item",
            "iid",
            "--no-progress",
        ],
    )
    try:
        main()
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "userid" in err and "Did you mean 'uid'" in err


def test_unknown_model_and_bad_k(tmp_path):
    res = CliRunner().invoke(cli, ["evaluate", "--models", "nope", "--no-progress"])
    assert res.exit_code != 0 and "unknown model" in str(res.exception)
    res = CliRunner().invoke(cli, ["evaluate", "--k", "ten"])
    assert res.exit_code == 2 and "comma-separated integers" in res.output


def test_datasets_lists_ml100k():
    res = CliRunner().invoke(cli, ["datasets"])
    assert res.exit_code == 0 and "ml-100k" in res.output and "unisrec" in res.output


def test_progress_reaches_logs_when_stderr_is_not_a_terminal(capsys):
    from anyrec.cli.common import _progress_lines

    update = _progress_lines(every_s=3600)
    update("score users", 1, 10)  # too soon: nothing
    update("score users", 10, 10)  # done: always one line
    update("score users", 10, 10)  # and only one
    err = capsys.readouterr().err
    assert err.count("score users: 10/10 (100 %)") == 1 and "1/10" not in err
    chatty = _progress_lines(every_s=0)
    chatty("embed", 3, 9)
    assert "embed: 3/9 (33 %)" in capsys.readouterr().err


def test_evaluate_also_reads_the_same_lists_with_nothing_masked(tmp_path):
    _write_tables(tmp_path)
    out = tmp_path / "r.json"
    base = ["evaluate", "--items", str(tmp_path / "items.csv"), "--item-id", "id", "--text", "title,genres",
            "--interactions", str(tmp_path / "inter.csv"), "--user", "uid", "--item", "iid", "--time", "ts",
            "--models", "popularity", "--k", "5", "--no-progress"]
    res = CliRunner().invoke(cli, [*base, "--also-mask", "none", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "popularity, masked none: " in res.output
    res = CliRunner().invoke(
        cli,
        [
            *base[:-5],
            "--k",
            "5",
            "--models",
            "zeroshot",
            "--option",
            "zeroshot.encoder=hashing:64",
            "--no-cache",
            "--report-untuned",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0 and "zeroshot, before the validation search: " in res.output, res.output
    both = json.loads(out.read_text())["models"]["popularity"]
    CliRunner().invoke(cli, [*base, "--mask", "none", "--json", str(out)])
    alone = json.loads(out.read_text())["models"]["popularity"]
    assert both["by_mask"]["none"]["ndcg@5"] == alone["ndcg@5"] != both["ndcg@5"]  # popularity re-ranks seen items


def test_a_refusing_model_is_a_row_and_the_others_finish(tmp_path):
    """Issue 35: a model that refuses (here EASE with a 1 MB memory limit) is a row with its reason, in the table and
    the JSON; every other model finishes and the exit status is 0; only when nothing finished is it non-zero."""
    _write_tables(tmp_path)
    out = tmp_path / "r.json"
    data = [
        "--items",
        str(tmp_path / "items.csv"),
        "--item-id",
        "id",
        "--text",
        "title,genres",
        "--interactions",
        str(tmp_path / "inter.csv"),
        "--user",
        "uid",
        "--item",
        "iid",
        "--time",
        "ts",
        "--no-progress",
    ]
    dense_only = [
        "--option",
        "ease.max_memory_mb=0.000001",
        "--option",
        "ease.solver=dense",
    ]  # (unset: the sparse path)
    res = CliRunner().invoke(
        cli, ["evaluate", *data, "--models", "popularity,ease,itemknn", *dense_only, "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert set(doc["models"]) == {"popularity", "itemknn"} and "max_memory_mb" in doc["refused"]["ease"]
    assert "refused" in res.output and "ease" in res.output
    alone = CliRunner().invoke(cli, ["evaluate", *data, "--models", "ease", *dense_only])
    assert alone.exit_code != 0 and "no model finished" in str(alone.exception)  # `anyrec` exits 2 with this message


def test_a_result_with_numpy_figures_is_written_as_plain_json(tmp_path):
    """A figure left as a numpy scalar or array (a bool from a comparison, a float64 mean) is written as a plain
    number: the file at the end of a long run is never lost to ``Object of type bool is not JSON serializable``."""
    import json

    import numpy as np

    from anyrec.cli.common import write_json

    result = {"kept": np.bool_(True), "z": np.float64(2.5), "n": np.int64(3), "top": np.arange(3), "name": "ease"}
    path = write_json(tmp_path / "deep" / "run.json", result)
    assert json.loads(path.read_text(encoding="utf-8")) == {"kept": True, "z": 2.5, "n": 3, "top": [0, 1, 2],
                                                           "name": "ease"}
    with pytest.raises(TypeError, match="object is not JSON"):
        write_json(tmp_path / "bad.json", {"x": object()})
