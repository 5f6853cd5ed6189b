"""Continued pretraining on catalog text writes a folder the encoder loads."""

import numpy as np
import pytest

from anyrec.errors import ConfigError
from anyrec.lm import EncoderConfig, TextEncoder
from anyrec.lm.pretrain import PretrainConfig, pretrain

TEXTS = [
    f"A {w} story about {v} and {u}."
    for w, v, u in zip(["space", "love", "ghost"] * 4, ["robots", "paris", "night"] * 4, "abcdefghijkl")
]


@pytest.mark.slow
def test_mlm_on_minilm_saves_a_sentence_transformers_folder(tmp_path):
    out = tmp_path / "adapted"
    report = pretrain(TEXTS, out, PretrainConfig(epochs=1, batch_size=4, threads=1))
    assert report["steps"] == 3 and len(report["epoch_losses"]) == 1
    assert (out / "modules.json").exists() and (out / "model.safetensors").exists()
    base = TextEncoder(EncoderConfig()).encode(TEXTS[:2])
    adapted = TextEncoder(EncoderConfig(model=str(out))).encode(TEXTS[:2])
    assert adapted.shape == base.shape and not np.allclose(adapted, base)
    assert np.allclose(np.linalg.norm(adapted, axis=1), 1.0, atol=1e-4)


def test_clm_on_a_tiny_causal_model(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    src = tmp_path / "tiny-gpt2"
    vocab = {
        w: i
        for i, w in enumerate(
            ["<eos>", "<unk>"] + sorted({t.strip(".") for x in TEXTS for t in x.lower().split()}) + ["."]
        )
    }
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", unk_token="<unk>")
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=16, n_layer=1, n_head=2, n_positions=32)).save_pretrained(
        src
    )
    tok.save_pretrained(src)
    out = tmp_path / "out"
    report = pretrain(
        [t.lower() for t in TEXTS],
        out,
        PretrainConfig(model=str(src), objective="clm", epochs=2, batch_size=6, lr=1e-2),
    )
    assert report["epoch_losses"][1] < report["epoch_losses"][0]
    assert (out / "config.json").exists()


def test_bad_requests(tmp_path):
    with pytest.raises(ConfigError, match="objective"):
        pretrain(TEXTS, tmp_path / "x", PretrainConfig(objective="mask"))
    with pytest.raises(ConfigError, match="no catalog text"):
        pretrain(["", " "], tmp_path / "x", PretrainConfig())
