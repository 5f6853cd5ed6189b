"""``anyrec keys create``, ``import`` and ``retrain``, and activating a retrained version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient

from anyrec.cli import cli
from anyrec.serve import ServeSettings, create_app
from anyrec.serve.live import EventWeights
from anyrec.serve.retrain import dataset_from_store
from anyrec.serve.service import seed_store
from anyrec.store import Event, Store


def test_keys_create_prints_the_key_last_and_stores_only_its_hash(store_url: str) -> None:
    res = CliRunner().invoke(cli, ["keys", "create", "--store", store_url, "--name", "ops"])
    assert res.exit_code == 0, res.output
    key = res.output.strip().splitlines()[-1].split()[-1]
    store = Store.open(store_url)
    assert store.check_key(key)
    store.close()


def test_import_reads_any_table_with_the_same_bad_input_rules(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "items.csv").write_text(
        "id,title,genres\n" + "".join(f"{i},Film {i},{'A' if i % 2 else 'B'}\n" for i in range(6))
    )
    (tmp_path / "inter.csv").write_text("uid,iid,ts,kind\nu1,0,1,purchase\nu1,1,2,click\nu2,3,3,watched\n")
    args = [
        "import",
        "--store",
        store_url,
        "--items",
        str(tmp_path / "items.csv"),
        "--item-id",
        "id",
        "--text",
        "title",
        "--category",
        "genres",
        "--interactions",
        str(tmp_path / "inter.csv"),
        "--user",
        "uid",
        "--item",
        "iid",
        "--time",
        "ts",
        "--event",
        "kind",
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "items 6" in res.output and "events 3" in res.output
    store = Store.open(store_url)
    assert store.history("u1") == [("0", "purchase", None, 1.0), ("1", "click", None, 2.0)]
    assert store.history("u2")[0][1] == "view"  # a type the API does not know is imported as a view
    assert store.item("3").category == "A"  # type: ignore[union-attr]
    store.close()
    (tmp_path / "bad.csv").write_text("user,item\nu1,0\n")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "anyrec",
            "import",
            "--store",
            store_url,
            "--items",
            str(tmp_path / "items.csv"),
            "--item-id",
            "id",
            "--text",
            "title",
            "--interactions",
            str(tmp_path / "bad.csv"),
            "--user",
            "uid",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "uid" in bad.stdout + bad.stderr and "Traceback" not in bad.stdout + bad.stderr


def test_dataset_from_store_learns_from_positive_events_only(zeroshot_dir: Path, store_url: str) -> None:
    store = Store.open(store_url)
    seed_store(store, zeroshot_dir)
    store.add_events([Event("u0", "g1", "dislike"), Event("u0", "g2", "skip"), Event("u0", "l1", "like"),
                      Event("u0", "zzz", "click"), Event("u0", "l2", "rating", 1.0)])
    store.delete_item("s11")
    ds, report = dataset_from_store(
        store, EventWeights(), template="{title}. {genres}. {text}", category_field="genres"
    )
    assert (
        report["interactions"] == 121
        and report["dislike events (weight <= 0)"] == 1
        and report["skip events (weight <= 0)"] == 1
    )
    assert report["events on deleted or unknown items"] == 1 and report["rating events (weight <= 0)"] == 1
    assert ds.n_items == 35 and "s11" not in ds.catalog.ids
    store.close()


def test_retrain_registers_a_version_that_activates_and_rolls_back(zeroshot_dir: Path, store_url: str, api_key: str,
                                                                  tmp_path: Path) -> None:
    with TestClient(create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url))) as client:
        client.headers["Authorization"] = f"Bearer {api_key}"
        client.put(
            "/v1/items/g77", json={"fields": {"title": "Ghost night", "text": "ghost night fear"}, "category": "ghost"}
        )
        client.post("/v1/events", json=[{"user": "u0", "item": "g77", "type": "purchase"}])
        res = CliRunner().invoke(cli, ["retrain", "--store", store_url, "--out", str(tmp_path / "registry")])
        assert res.exit_code == 0, res.output
        assert "registered v2 (zeroshot)" in res.output and "valid_ndcg@10" in res.output
        versions = client.get("/v1/models").json()
        assert [v["version"] for v in versions] == ["v1", "v2"] and versions[1]["metrics"]["interactions"] == 121
        assert 0.0 <= versions[1]["metrics"]["valid_ndcg@10"] <= 1.0
        assert client.post("/v1/models/v2/activate").json()["active"]
        body = client.get("/v1/users/u2/recommendations").json()
        assert body["model_version"] == "v2"
        assert (
            client.get("/v1/items/g77/similar", params={"k": 3}).status_code == 200
        )  # the new item is in v2's own catalog
        assert client.post("/v1/models/v1/activate").status_code == 200  # roll back
        assert client.get("/v1/users/u2/recommendations").json()["model_version"] == "v1"


def test_retrain_starts_a_version_from_a_pretrained_folder(zeroshot_dir: Path, store_url: str, tiny_pretrained: Path,
                                                           tmp_path: Path) -> None:
    """``retrain --model transfer --init DIR``: the store's catalog served by the network pretrained elsewhere."""
    with TestClient(create_app(ServeSettings(model_dir=str(zeroshot_dir), store_url=store_url))):
        pass  # the app seeds the store from the fitted version
    res = CliRunner().invoke(
        cli,
        [
            "retrain",
            "--store",
            store_url,
            "--out",
            str(tmp_path / "registry"),
            "--model",
            "transfer",
            "--init",
            str(tiny_pretrained),
            "--option",
            "transfer.threads=1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "registered v2 (transfer)" in res.output
