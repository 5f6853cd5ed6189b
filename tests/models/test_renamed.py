"""One name per concept, and "sized from the data" spelt ``None``, without breaking what earlier versions wrote:
renamed options in ``--option`` / TOML and in saved folders are read under their new names with a warning naming
them; ``-1`` (``0`` for ``batch_size``) reads as ``None``; a removed option is named and ignored (issue 34)."""

from __future__ import annotations

import json
import logging
from dataclasses import fields

import pytest
from tests.conftest import checkerboard

from anyrec.app.persist import load_model, save_model
from anyrec.errors import ConfigError
from anyrec.models import MODELS
from anyrec.models.registry import build_model
from anyrec.models.renamed import RENAMED


def test_one_name_per_concept_across_the_models():
    names = {n: {f.name for f in fields(cls.Config)} for n, cls in MODELS.items()}
    for old, new in RENAMED.items():
        assert not any(old in opts for opts in names.values()), old  # nowhere under its earlier name
        assert any(new in opts for opts in names.values()), new
    assert {"push", "kin"} <= names["sequential"] & names["zeroshot"] & names["ease"]
    assert "init" in names["generative"] and "init" in names["sequential"]
    for name in ("sequential", "generative"):  # "sized from the data" is None wherever a model sizes an option
        sized = [
            f.name
            for f in fields(MODELS[name].Config)
            if f.name in ("batch_size", "max_minutes", "search_minutes", "sampled_softmax", "valid_users")
        ]
        assert sized and all(next(f for f in fields(MODELS[name].Config) if f.name == s).default is None for s in sized)


def test_options_under_their_earlier_names_are_read_and_said(caplog):
    with caplog.at_level(logging.WARNING):
        model = build_model("sequential", 0, {"dislike_weight": 0.2, "dislike_kin": 3, "text_half_life": 5.0,
                                              "sampled_softmax": -1, "batch_size": 0, "max_minutes": -1.0})
    c = model.config
    assert (c.push, c.kin, c.half_life) == (0.2, 3, 5.0)
    assert c.sampled_softmax is None and c.batch_size is None and c.max_minutes is None
    said = caplog.text
    assert "sequential.dislike_weight is now sequential.push" in said and "sequential.text_half_life is now" in said
    with caplog.at_level(logging.WARNING):
        gen = build_model("generative", 0, {"pretrained": "", "init_from_codebooks": True, "valid_users": -1})
    assert gen.config.valid_users is None and "generative.init_from_codebooks no longer exists" in caplog.text


def test_a_folder_written_with_the_earlier_names_loads(tmp_path, caplog):
    board = checkerboard()
    folder = save_model(
        build_model("sequential", 0, {"epochs": 1, "hidden": 8, "layers": 1, "use_text": False}).fit(board),
        board,
        tmp_path / "seq",
    )
    meta = json.loads((folder / "model.json").read_text())
    cfg = meta["config"]
    cfg["dislike_weight"], cfg["dislike_kin"], cfg["text_half_life"] = (
        cfg.pop("push"),
        cfg.pop("kin"),
        cfg.pop("half_life"),
    )
    cfg["sampled_softmax"] = cfg["sampled_softmax"] if cfg["sampled_softmax"] is not None else -1
    (folder / "model.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        model, _ds, _index, _meta = load_model(folder)
    assert model.config.push == 0.05 and model.config.kin == 10 and model.config.half_life == 3.0
    assert "sequential.dislike_kin is now sequential.kin" in caplog.text


def test_the_encoder_settings_are_nested_not_copied(caplog):
    """Each text model keeps the encoder's settings in one ``encoder`` table (the encoder's own config); earlier
    flat spellings (``zeroshot.cache_dir``) are read into it and named in a warning."""
    from anyrec.lm.encoder import EncoderConfig

    for name in ("zeroshot", "hybrid", "sequential", "generative"):
        names = {f.name for f in fields(MODELS[name].Config)}
        assert "encoder" in names and not names & {"cache_dir", "backend"}, name
        assert isinstance(MODELS[name].Config().encoder, EncoderConfig)
    assert not {"batch_size", "threads"} & {f.name for f in fields(MODELS["zeroshot"].Config)}
    with caplog.at_level(logging.WARNING):
        old = build_model("zeroshot", 0, {"encoder": "hashing:64", "cache_dir": "/tmp/c", "batch_size": 16})
    assert old.config.encoder == EncoderConfig("hashing:64", batch_size=16, cache_dir="/tmp/c")
    assert "zeroshot.cache_dir is now zeroshot.encoder.cache_dir" in caplog.text
    dotted = {"encoder.model": "hashing:64", "encoder.cache_dir": "/tmp/c", "encoder.batch_size": 16}
    new = build_model("zeroshot", 0, dotted)
    assert new.config == old.config
    table = build_model("hybrid", 0, {"encoder": {"model": "hashing:64", "threads": 2}})
    assert table.config.encoder == EncoderConfig("hashing:64", threads=2)
    # a name changes the model only: the other settings stay
    seq = MODELS["sequential"](MODELS["sequential"].Config(encoder={"cache_dir": "/tmp/c"}), encoder="hashing:32")
    assert seq.config.encoder == EncoderConfig("hashing:32", cache_dir="/tmp/c")
    # the sequential model's own batch_size (its training's) keeps its name
    assert build_model("sequential", 0, {"batch_size": 32}).config.batch_size == 32
    with pytest.raises(ConfigError, match="encoder has no setting"):
        build_model("zeroshot", 0, {"encoder.batchsize": 4})


def test_a_folder_with_the_flat_encoder_settings_loads(tmp_path, caplog):
    board = checkerboard()
    folder = save_model(build_model("zeroshot", 0, {"encoder": "hashing:32"}).fit(board), board, tmp_path / "zs")
    meta = json.loads((folder / "model.json").read_text())
    enc = meta["config"].pop("encoder")
    meta["config"].update(encoder=enc["model"], cache_dir="", batch_size=enc["batch_size"], threads=0, backend="torch")
    (folder / "model.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        model, ds, _index, _meta = load_model(folder)
    assert model.config.encoder.model == "hashing:32"
    assert "zeroshot.backend is now zeroshot.encoder.backend" in caplog.text
    assert model.recommend_raw(ds.users.raw(0), k=3)
