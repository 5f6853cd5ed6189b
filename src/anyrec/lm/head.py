"""A behaviour head: a linear layer on a sentence encoder's unit vectors (see :mod:`anyrec.lm.behaviour`), in torch
while it trains, as one ``(dim + 1, dim)`` array in a model's folder, as a ``Dense`` module in an encoder's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anyrec.errors import ConfigError
from anyrec.lm.encoder import resolve_encoder


class Head:
    """``x → normalize(x @ weight + bias)`` on unit sentence vectors, identity at the start (torch parameters)."""

    def __init__(self, dim: int, device: str) -> None:
        import torch

        self.weight = torch.nn.Parameter(torch.eye(dim, device=device))
        self.bias = torch.nn.Parameter(torch.zeros(dim, device=device))
        self.device = device

    def __call__(self, x: Any) -> Any:
        import torch

        return torch.nn.functional.normalize(x @ self.weight + self.bias, dim=-1)

    def table(self, vectors: np.ndarray) -> Any:
        import torch

        return self(torch.from_numpy(vectors).to(self.device))

    def array(self) -> np.ndarray:
        """``[weight; bias]`` as one ``(dim + 1, dim)`` float32 array (what a model's folder keeps)."""
        return np.vstack([self.weight.detach().cpu().numpy(), self.bias.detach().cpu().numpy()[None, :]]).astype(
            np.float32
        )

    def numpy(self, vectors: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return np.asarray(self.table(vectors).cpu().numpy())


def apply_head(head: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``normalize(unit(v) @ weight + bias)`` with ``head = [weight; bias]`` (numpy; what the torch head computes)."""
    v = np.asarray(vectors, dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    out = v @ head[:-1] + head[-1]
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def save_with_head(encoder: str, head: Head, folder: Path) -> None:
    """The encoder with the head after its pooling (Normalize → Dense → Normalize), as a sentence-transformers
    folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Normalize

    resolved = resolve_encoder(encoder)
    if resolved.startswith("hashing"):
        raise ConfigError("a behaviour head needs a sentence-transformers encoder, not 'hashing'")
    st: Any = SentenceTransformer(resolved, device="cpu")
    modules = [m for m in st]
    while modules and type(modules[-1]).__name__ == "Normalize":
        modules.pop()
    dim = head.weight.shape[0]
    dense = Dense(
        dim,
        dim,
        bias=True,
        activation_function=torch.nn.Identity(),
        init_weight=head.weight.detach().cpu().T.contiguous(),
        init_bias=head.bias.detach().cpu().clone(),
    )
    SentenceTransformer(modules=[*modules, Normalize(), dense, Normalize()], device="cpu").save(str(folder))
