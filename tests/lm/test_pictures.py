"""Items with pictures (issue 37): a planted catalog (benchmarks/pictures.py) and a tiny CLIP built from a
``transformers`` config in a folder — the loading path of a real checkpoint without a network — through the
encoder, the text models, ``evaluate``, ``fit``, the service and its picture route."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from anyrec.cli import cli
from anyrec.data import load_dataset
from anyrec.data.table import mapping_from_toml
from anyrec.errors import ConfigError
from anyrec.lm.image import ImageEncoder, item_picture_vectors
from anyrec.models.registry import build_model

ROOT = Path(__file__).resolve().parents[2]


def _pictures_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pictures_benchmark", ROOT / "benchmarks" / "pictures.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """120 items, 10 % of their picture paths broken (half missing, half not images), 150 users; a tiny CLIP trained
    for a few seconds on the (picture, caption) pairs."""
    pics = _pictures_module()
    out = tmp_path_factory.mktemp("pictures")
    made = pics.make_catalog(out, items=120, users=150, broken=0.1, seed=1)
    pics.train_clip(out / "clip", made["paths"], made["captions"], minutes=0.2, epochs=8, batch=64)
    return {"out": out, "clip": out / "clip", "made": made}


def test_the_folder_loads_as_a_transformers_clip_and_counts_what_it_could_not_read(planted, tmp_path):
    made = planted["made"]
    enc = ImageEncoder(str(planted["clip"]), cache_dir=str(tmp_path / "cache"))
    vectors, ok, report = enc.encode_images(made["paths"])
    assert enc.describe()["kind"] == "transformers"
    assert vectors.shape[0] == 120 and int((~ok).sum()) == 12 == sum(report.skipped.values())
    assert report.skipped == {"missing file": 6, "unreadable image": 6} and report.embedded == 108
    np.testing.assert_allclose(np.linalg.norm(vectors[ok], axis=1), 1.0, atol=1e-5)
    assert not vectors[~ok].any()
    again = ImageEncoder(str(planted["clip"]), cache_dir=str(tmp_path / "cache"))
    v2, _, r2 = again.encode_images(made["paths"])  # from the cache, keyed by the pictures' bytes
    assert r2.cached == 108 and np.allclose(v2, vectors, atol=1e-6)
    fused, _ = item_picture_vectors(enc, made["paths"], [f"item {i}" for i in range(120)])
    assert np.all(np.linalg.norm(fused, axis=1) > 0.99)  # a broken picture's item keeps its text's CLIP vector


def test_an_unknown_name_offline_is_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as without a network, minus the waits
    with pytest.raises(ConfigError, match="image encoder 'no-such-org/no-such-clip' could not be loaded .*network"):
        ImageEncoder("no-such-org/no-such-clip").load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds neither modules.json"):
        ImageEncoder(str(tmp_path / "empty"))


def test_the_fused_rows_blend_text_and_picture_cosines_by_the_weight(planted):
    ds = load_dataset(None, mapping=mapping_from_toml(Path(planted["out"]) / "anyrec.toml"))
    model = build_model(
        "zeroshot", 0, {"encoder": "hashing:64", "image_encoder": str(planted["clip"]), "image_weight": 0.3}
    )
    model.fit(ds)
    text, pics = model.text_only_table(), model.image_vectors_
    table = model.table()
    assert table.shape == (ds.n_items, text.shape[1] + pics.shape[1])
    np.testing.assert_allclose(table @ table[5], 0.7 * (text @ text[5]) + 0.3 * (pics @ pics[5]), atol=1e-5)
    assert model.report_.pictures["skipped"] == {"missing file": 6, "unreadable image": 6}
    assert "image_weight" in model.tuning_grid and "image_weight" in model.space_options
    # a text query finds pictures through the picture model's text tower: the query's picture side is CLIP's
    q = model.query_vectors(["a red circle"], model.text_encoder().encode(["a red circle"]))
    assert q.shape == (1, table.shape[1])
    text_only = build_model("zeroshot", 0, {"encoder": "hashing:64"}).fit(ds)
    assert "image_weight" not in text_only.tuning_grid and text_only.table().shape[1] == 64


def test_evaluate_fit_and_serve_with_pictures(planted, tmp_path):
    toml, clip = str(Path(planted["out"]) / "anyrec.toml"), str(planted["clip"])
    res = CliRunner().invoke(cli, ["evaluate", "--config", toml, "--image-encoder", clip, "--models", "zeroshot,hybrid",
                                   "--k", "10", "--no-progress", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "12 missing file" not in res.output and "6 missing file, 6 unreadable image" in " ".join(res.output.split())
    result = json.loads((tmp_path / "r.json").read_text())
    for name in ("zeroshot", "hybrid"):
        assert result["models"][name]["pictures"]["embedded"] == 108
        assert "image_weight" in result["tuned"][name]

    res = CliRunner().invoke(cli, ["fit", "--model", "zeroshot", "--config", toml, "--image-encoder", clip,
                                   "--option", "zeroshot.image_weight=0.5", "--no-tune", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["config"]["image_encoder"] == clip and meta["config"]["image_weight"] == 0.5

    from anyrec.serve import ServeSettings, create_app

    app = create_app(ServeSettings(model_dir=str(tmp_path / "m"), store_url=f"sqlite:///{tmp_path / 's.db'}"))
    with TestClient(app) as client:
        items = client.get("/v1/users/u0/recommendations", params={"k": 10}).json()["items"]
        assert all(it["image"] and it["image"].startswith("/v1/items/") for it in items)
        shown = client.get(items[0]["image"])
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
        assert shown.content[:4] == b"\x89PNG"
        gone = client.get("/v1/items/p0/image")  # item p0's picture: broken or not, never a 500
        assert gone.status_code in (200, 404)
        broken = planted["made"]["missing"][0]
        assert client.get(f"/v1/items/p{broken}/image").status_code == 404
        stored = client.get(f"/v1/items/{items[0]['id']}").json()
        assert stored["fields"]["image"] == items[0]["image"]  # the route, never the server's path
        found = client.post("/v1/search", json={"query": "a red circle", "k": 5})
        assert found.status_code == 200 and len(found.json()["items"]) == 5


def test_the_sequential_model_reads_the_fused_vectors(planted):
    ds = load_dataset(None, mapping=mapping_from_toml(Path(planted["out"]) / "anyrec.toml"))
    opts = {"encoder": "hashing:32", "image_encoder": str(planted["clip"]), "image_weight": 0.4, "epochs": 2,
            "hidden": 16, "layers": 1, "max_len": 10}
    model = build_model("sequential", 0, opts).fit(ds)
    table = model.text_table()
    assert table.shape == (ds.n_items, 32 + model.image_vectors_.shape[1])
    assert model.encoded_items().shape == (ds.n_items, 32)  # what other text models may share: the encoder's own
    assert model.report_.pictures["embedded"] == 108
    q = model.query_vectors(["a blue square"], model.text_encoder().encode(["a blue square"]))
    assert q.shape == (1, table.shape[1]) and np.isclose(np.linalg.norm(q), 1.0, atol=1e-5)
    assert model.add_items(model.text_encoder().encode(["Basic kit, no. 1"]))
    assert model.text_table().shape[0] == ds.n_items + 1
    scores = model.score_history(np.array([0, 1, 2]), np.ones(3))
    assert scores is not None and np.isfinite(scores).all()
    with pytest.raises(ConfigError, match="image_encoder: pictures are fused"):
        build_model("sequential", 0, {**opts, "finetune_layers": 1}).fit(ds)


def _in_hub_cache(cache: Path, name: str, folder: Path) -> None:
    """``folder`` laid out as the hub's cache keeps a downloaded ``name`` (refs/main → a snapshot)."""
    import shutil

    repo = cache / f"models--{name.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    shutil.copytree(folder, repo / "snapshots" / ("0" * 40))


def test_real_checkpoint_names_load_from_the_hub_cache_offline(planted, tmp_path, monkeypatch):
    """The hub-name path (``openai/clip-vit-base-patch32``, ``google/siglip-base-patch16-224``) as a user with a
    network takes it, minus the download: tiny random models from configs placed in a temporary hub cache."""
    import huggingface_hub.constants
    import torch
    from transformers import AutoTokenizer, SiglipConfig, SiglipImageProcessor, SiglipModel

    from anyrec.lm.encoder import resolve_encoder

    torch.manual_seed(0)
    siglip = tmp_path / "siglip"
    tok = AutoTokenizer.from_pretrained(resolve_encoder("default"))
    SiglipModel(SiglipConfig(
        text_config={"vocab_size": tok.vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 32},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 1, "num_attention_heads": 2})).save_pretrained(siglip)
    tok.save_pretrained(siglip)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(siglip)
    cache = tmp_path / "hub"
    _in_hub_cache(cache, "openai/clip-vit-base-patch32", Path(planted["clip"]))
    _in_hub_cache(cache, "google/siglip-base-patch16-224", siglip)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    paths = planted["made"]["paths"][:20]
    for name, dim in (("openai/clip-vit-base-patch32", 64), ("google/siglip-base-patch16-224", 32)):
        enc = ImageEncoder(name)
        vectors, ok, _ = enc.encode_images(paths)
        assert enc.describe()["kind"] == "transformers" and vectors.shape == (20, dim)
        assert ok.sum() == sum(1 for i in range(20) if i not in planted["made"]["broken"])
        assert enc.encode_texts(["a red circle"]).shape == (1, dim)


def test_pictures_by_url_are_downloaded_and_a_failed_download_is_counted(planted, tmp_path):
    import http.server
    import threading
    from functools import partial

    folder = Path(planted["out"]) / "images"
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        good = next(p for p in planted["made"]["paths"] if "item" in Path(p).name and Path(p).stat().st_size > 100)
        sources = [f"{base}/{Path(good).name}", f"{base}/no-such-picture.png", ""]
        vectors, ok, report = ImageEncoder(str(planted["clip"])).encode_images(sources)
        local, _, _ = ImageEncoder(str(planted["clip"])).encode_images([good])
    finally:
        server.shutdown()
    assert ok.tolist() == [True, False, False]
    assert report.skipped == {"download failed": 1} and report.without == 1 and report.embedded == 1
    np.testing.assert_allclose(vectors[0], local[0], atol=1e-6)  # the same bytes, the same vector
