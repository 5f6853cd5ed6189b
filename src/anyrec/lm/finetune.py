"""End-to-end fine-tuning of a sentence encoder's top layers inside a recommender.

The bottom of the encoder stays frozen: its output for every catalog text is computed once
and kept (``items × tokens × hidden`` floats). Only the top ``layers`` transformer layers, the
pooling and the normalisation run in each training step, for the items that step touches,
so the recommendation loss reaches the text encoder at a cost a CPU can carry.

Works with sentence-transformers models whose first module wraps a Hugging Face encoder
with a ``encoder.layer`` list (BERT, RoBERTa, MPNet, MiniLM, XLM-R, ...), mean or CLS pooling.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from anyrec.errors import ConfigError
from anyrec.lm.encoder import resolve_encoder

log = logging.getLogger(__name__)


def _bidirectional_mask(model: Any, hidden: Any, mask: Any) -> Any:
    """The attention mask the encoder's layers expect for ``mask`` (batch, tokens) of 0/1."""
    try:
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask)
    except ImportError:  # transformers < 4.56: additive (batch, 1, 1, tokens) mask
        return model.get_extended_attention_mask(mask, mask.shape)


def build_top_encoder(name: str, texts: list[str], layers: int, max_tokens: int, device: str = "cpu",
                      batch_size: int = 64, progress: Callable[[int, int], None] | None = None) -> Any:
    """A torch module mapping item indices to text vectors through trainable top layers.

    ``module(idx)`` → (len(idx), dim) vectors with gradients; ``module.all_vectors()`` → every
    item's vector without. At construction ``all_vectors()`` equals the pretrained encoder's
    output for the texts cut to ``max_tokens`` tokens.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    resolved = resolve_encoder(name)
    if resolved.startswith("hashing"):
        raise ConfigError("finetune_layers needs a transformer encoder; the 'hashing' encoder has no layers to tune")
    st: Any = SentenceTransformer(resolved, device=device)
    auto: Any = st[0].auto_model
    stack: Any = getattr(getattr(auto, "encoder", None), "layer", None)
    if stack is None:
        raise ConfigError(f"encoder {name!r}: fine-tuning needs a model with encoder.layer (BERT-like); "
                          f"{type(auto).__name__} has none")
    total = len(stack)
    if not 1 <= layers <= total:
        raise ConfigError(f"finetune_layers must be between 1 and {total} for {name!r}, got {layers}")
    pooling = next((m for m in st if type(m).__name__ == "Pooling"), None)
    mode = "mean"
    if pooling is not None and getattr(pooling, "pooling_mode_cls_token", False):
        mode = "cls"
    normalize = any(type(m).__name__ == "Normalize" for m in st)
    tok = st.tokenizer
    n = len(texts)
    width_out = int(auto.config.hidden_size)
    hidden = torch.zeros(n, max_tokens, width_out)
    masks = torch.zeros(n, max_tokens, dtype=torch.long)
    order = sorted(range(n), key=lambda i: -len(texts[i]))
    auto.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            out = auto(**enc, output_hidden_states=True)
            states = out.hidden_states[total - layers]  # input of the first tuned layer
            width = states.shape[1]
            hidden[idx, :width] = states.float().cpu()
            masks[idx, :width] = enc["attention_mask"].cpu()
            if progress is not None:
                progress(min(start + batch_size, n), n)
    log.info("fine-tuning the top %d of %d layers of %s; cached %s lower-layer states (%.0f MB)",
             layers, total, name, tuple(hidden.shape), hidden.numel() * 4 / 2**20)

    class TopEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(copy.deepcopy(stack[total - layers :]))
            self.register_buffer("hidden", hidden, persistent=False)
            self.register_buffer("masks", masks, persistent=False)
            self.hidden: Any
            self.masks: Any
            self._config_holder = [auto]  # a list keeps the frozen model out of parameters()

        def forward(self, idx: Any) -> Any:
            m = self.masks[idx]
            width = max(1, int(m.sum(1).max()))
            m = m[:, :width]
            h = self.hidden[idx, :width]
            att = _bidirectional_mask(self._config_holder[0], h, m)
            for layer in self.layers:
                out = layer(h, att)
                h = out[0] if isinstance(out, tuple) else out
            if mode == "cls":
                v = h[:, 0]
            else:
                w = m.to(h.dtype)[..., None]
                v = (h * w).sum(1) / w.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, dim=-1) if normalize else v

        def all_vectors(self, batch: int = 256) -> Any:
            was = self.training
            self.eval()
            with torch.no_grad():
                parts = [self(torch.arange(s, min(s + batch, n), device=self.hidden.device)) for s in range(0, n, batch)]
            self.train(was)
            return torch.cat(parts) if parts else torch.zeros(0, width_out)

        def save_encoder(self, path: str) -> None:
            """Write the whole encoder, with the tuned top layers, as a sentence-transformers folder."""
            full = copy.deepcopy(st)
            target = full[0].auto_model.encoder.layer
            for i, layer in enumerate(self.layers):
                target[total - layers + i].load_state_dict(layer.state_dict())
            full.save(path)

    return TopEncoder().to(device)


def vectors_agree(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest row-wise cosine between two vector tables (a check that tuning starts where the encoder is)."""
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float((an * bn).sum(1).min())
