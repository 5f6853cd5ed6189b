"""One name per concept, and "sized from the data" spelt ``None``, without breaking what earlier versions wrote:
renamed options in ``--option`` / TOML and in saved folders are read under their new names with a warning naming
them; ``-1`` (``0`` for ``batch_size``) reads as ``None``; a removed option is named and ignored (issue 34)."""

from __future__ import annotations

import json
import logging
from dataclasses import fields

from tests.conftest import checkerboard

from anyrec.app.persist import load_model, save_model
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
