"""A sentence encoder's top layers, trainable, over its lower layers' outputs computed once.

The bottom of the encoder stays frozen: its output for every text is computed once and kept, each
text at its own length (``tokens × hidden`` half-precision floats, no padding). A training step runs
only the top ``layers`` transformer layers, the pooling and the normalisation for the texts it
touches, so a contrastive or recommendation loss reaches the text encoder at a cost a CPU can carry
(on all-MiniLM-L6-v2, two of six layers: about a third of a full forward and backward pass).

Works with sentence-transformers models whose first module wraps a Hugging Face encoder with an
``encoder.layer`` list (BERT, RoBERTa, MPNet, MiniLM, XLM-R, ...), mean or CLS pooling. The tuned
encoder is written back as a whole sentence-transformers folder (:meth:`TopLayers.save`), which
``SentenceTransformer(DIR)`` and ``--encoder DIR`` load like any other.
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


def bidirectional_mask(model: Any, hidden: Any, mask: Any) -> Any:
    """The attention mask the encoder's layers expect for ``mask`` (batch, tokens) of 0/1."""
    try:
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask)
    except ImportError:  # transformers < 4.56: additive (batch, 1, 1, tokens) mask
        return model.get_extended_attention_mask(mask, mask.shape)


def load_sentence_model(name: str, device: str = "cpu") -> tuple[Any, Any, Any]:
    """``(sentence_model, hf_model, layer_list)`` of an encoder whose top layers can be trained."""
    from sentence_transformers import SentenceTransformer

    resolved = resolve_encoder(name)
    if resolved.startswith("hashing"):
        raise ConfigError(
            "training an encoder needs a transformer encoder; the 'hashing' encoder has no layers to tune"
        )
    st: Any = SentenceTransformer(resolved, device=device)
    auto: Any = st[0].auto_model
    try:
        stack: Any = auto.encoder.layer
    except AttributeError:
        stack = None
    if stack is None:
        raise ConfigError(
            f"encoder {name!r}: training its top layers needs a model with encoder.layer (BERT-like); "
            f"{type(auto).__name__} has none"
        )
    return st, auto, stack


def resolve_layers(layers: int | None, total: int, device: str, name: str) -> tuple[int, str]:
    """How many top layers train: ``layers`` when given (checked), else sized to the device, with the reason."""
    if layers is None:
        if device.startswith("cuda"):
            return total, f"{total} (all: a GPU carries the whole encoder)"
        n = min(2, total)
        return n, f"{n} of {total} (a CPU: the lower layers run once per text, the top {n} in every step)"
    if not 1 <= layers <= total:
        raise ConfigError(f"layers must be between 1 and {total} for {name!r}, got {layers}")
    return layers, f"{layers} of {total} (given)"


class LowerStates:
    """The frozen lower layers' output for every text, each at its own length: ``states`` (tokens, hidden)
    half precision, text ``i`` in rows ``offsets[i]:offsets[i + 1]``."""

    def __init__(self, states: Any, offsets: np.ndarray) -> None:
        self.states, self.offsets = states, offsets

    @classmethod
    def compute(
        cls,
        st: Any,
        auto: Any,
        texts: list[str],
        below: int,
        max_tokens: int,
        device: str = "cpu",
        batch_size: int = 64,
        progress: Callable[[int, int], None] | None = None,
    ) -> LowerStates:
        """Run the encoder's embeddings and first ``below`` layers over ``texts`` (cut to ``max_tokens`` tokens)."""
        import torch

        tok = st.tokenizer
        n = len(texts)
        order = sorted(range(n), key=lambda i: -len(texts[i]))
        parts: list[Any] = [None] * n
        auto.eval()
        with torch.no_grad():
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                enc = tok(
                    [texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
                )
                enc = {k: v.to(device) for k, v in enc.items()}
                out = auto(**enc, output_hidden_states=True)
                states = out.hidden_states[below].to(torch.float16).cpu()  # (batch, tokens, hidden)
                lengths = enc["attention_mask"].sum(1).cpu().tolist()
                for r, i in enumerate(idx):
                    parts[i] = states[r, : max(1, int(lengths[r]))]
                if progress is not None:
                    progress(min(start + batch_size, n), n)
        lengths = np.array([p.shape[0] for p in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        hidden = torch.cat(parts) if parts else torch.zeros(0, int(auto.config.hidden_size), dtype=torch.float16)
        return cls(hidden, offsets)

    def batch(self, idx: np.ndarray) -> tuple[Any, Any]:
        """Padded ``(states (b, tokens, hidden) float32, mask (b, tokens))`` of the texts ``idx``."""
        import torch

        lengths = self.offsets[idx + 1] - self.offsets[idx]
        width = int(lengths.max()) if len(idx) else 1
        h = torch.zeros(len(idx), width, self.states.shape[1])
        m = torch.zeros(len(idx), width, dtype=torch.long)
        for r, i in enumerate(idx):
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            h[r, : b - a] = self.states[a:b].float()
            m[r, : b - a] = 1
        return h, m

    @property
    def megabytes(self) -> float:
        return float(self.states.numel() * 2 / 2**20)


def top_layers(
    name: str,
    texts: list[str],
    layers: int | None,
    max_tokens: int,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """A torch module mapping text indices to vectors through ``layers`` trainable top layers
    (``None``: sized to the device, see :func:`resolve_layers`).

    ``module(idx)`` → (len(idx), dim) vectors with gradients; ``module.all_vectors()`` every text's
    vector without; ``module.save(path)`` the whole encoder, tuned top layers in place, as a
    sentence-transformers folder. At construction ``all_vectors()`` equals the pretrained encoder's
    output for the texts cut to ``max_tokens`` tokens.
    """
    import torch

    st, auto, stack = load_sentence_model(name, device)
    total = len(stack)
    tuned, why = resolve_layers(layers, total, device, name)
    pooling = next((m for m in st if type(m).__name__ == "Pooling"), None)
    mode = "cls" if pooling is not None and getattr(pooling, "pooling_mode_cls_token", False) else "mean"
    normalize = any(type(m).__name__ == "Normalize" for m in st)
    lower = LowerStates.compute(st, auto, texts, total - tuned, max_tokens, device, progress=progress)
    log.info(
        "training the top %s layers of %s; cached lower-layer states of %d texts (%.0f MB)",
        why,
        name,
        len(texts),
        lower.megabytes,
    )
    n, width_out = len(texts), int(auto.config.hidden_size)

    class TopLayers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(copy.deepcopy(stack[total - tuned :]))
            self.lower, self.tuned, self.reason, self.n_texts = lower, tuned, why, n
            self._config_holder = [auto]  # a list keeps the frozen model out of parameters()

        def forward(self, idx: Any) -> Any:
            ids = np.asarray(idx.cpu() if hasattr(idx, "cpu") else idx, dtype=np.int64)
            h, m = self.lower.batch(ids)
            h, m = h.to(device), m.to(device)
            att = bidirectional_mask(self._config_holder[0], h, m)
            for layer in self.layers:
                out = layer(h, att)
                h = out[0] if isinstance(out, tuple) else out
            if mode == "cls":
                v = h[:, 0]
            else:
                w = m.to(h.dtype)[..., None]
                v = (h * w).sum(1) / w.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, dim=-1) if normalize else v

        def all_vectors(self, batch: int = 256, idx: np.ndarray | None = None) -> Any:
            """Vectors of every text (or of ``idx``), no gradients, in length-sorted batches."""
            was = self.training
            self.eval()
            ids = np.arange(n) if idx is None else np.asarray(idx, dtype=np.int64)
            order = np.argsort(-(self.lower.offsets[ids + 1] - self.lower.offsets[ids]), kind="stable")
            out = torch.zeros(len(ids), width_out)
            with torch.no_grad():
                for s in range(0, len(ids), batch):
                    rows = order[s : s + batch]
                    out[rows] = self(ids[rows]).float().cpu()
            self.train(was)
            return out

        def save(self, path: str) -> None:
            """Write the whole encoder, with the tuned top layers, as a sentence-transformers folder."""
            full = copy.deepcopy(st)
            target = full[0].auto_model.encoder.layer
            for i, layer in enumerate(self.layers):
                target[total - tuned + i].load_state_dict(layer.state_dict())
            full.save(path)

    return TopLayers().to(device)


def vectors_agree(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest row-wise cosine between two vector tables (a check that tuning starts where the encoder is)."""
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float((an * bn).sum(1).min())
