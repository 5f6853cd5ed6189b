"""The sequential model's torch network and its data-parallel gradient step.

Kept apart from :mod:`anyrec.models.sequential` (the recommender: training loop, scoring,
serving) so each file reads in one sitting; torch is imported lazily, never at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from anyrec.models.sequential.config import SequentialConfig


def torch_module() -> Any:
    import torch

    return torch


def query_side(h: Any, temperature: float) -> Any:
    """The query half of a logit: unit length over ``temperature`` (cosine logits), or ``h`` itself (0)."""
    torch = torch_module()
    return torch.nn.functional.normalize(h, dim=-1) / temperature if temperature > 0 else h


def item_rows(items: Any, temperature: float) -> Any:
    """The item half of a logit: unit rows for cosine logits (``temperature`` > 0), else the rows themselves."""
    torch = torch_module()
    return torch.nn.functional.normalize(items, dim=-1) if temperature > 0 else items


def build_network(n_items: int, text_dim: int, cfg: SequentialConfig, text: np.ndarray | None = None) -> Any:
    """The torch module (built lazily so importing anyrec never imports torch).

    With ``text`` (the catalog's vectors), every expert starts as the catalog's principal
    components: item representations begin with the geometry of the pretrained text space,
    so "the next item reads like the last ones" is where training starts, not where it ends.
    """
    torch = torch_module()
    nn = torch.nn

    class TextAdaptor(nn.Module):  # type: ignore[name-defined]
        """Mixture of whitened linear experts over the frozen text vector."""

        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(cfg.experts, text_dim))
            self.proj = nn.Parameter(torch.empty(cfg.experts, text_dim, cfg.hidden))
            nn.init.xavier_uniform_(self.proj)
            if text is not None and text.shape[0] > 1:
                mean = text.mean(0)
                _, sv, vt = np.linalg.svd(text - mean, full_matrices=False)
                # A component's sign is arbitrary (float noise or another BLAS can flip it): fix it so the
                # largest loading is positive, and the same catalog always starts the same network.
                vt = vt * np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]
                k = min(cfg.hidden, int((sv > 1e-6 * sv[0]).sum()))  # a direction without variance carries nothing
                pcs = np.zeros((text_dim, cfg.hidden), dtype=np.float32)
                pcs[:, :k] = vt[:k].T
                with torch.no_grad():
                    self.bias.copy_(torch.from_numpy(np.tile(mean, (cfg.experts, 1))))
                    self.proj.copy_(torch.from_numpy(pcs)[None].repeat(cfg.experts, 1, 1) + 0.01 * self.proj)
            self.gate = nn.Linear(text_dim, cfg.experts, bias=False)

        def forward(self, x: Any) -> Any:  # x: (items, text_dim)
            experts = torch.einsum(
                "ied,edh->ieh", x[:, None, :] - self.bias[None], self.proj
            )  # (items, experts, hidden)
            gates = torch.softmax(self.gate(x), dim=-1)  # (items, experts)
            return (gates[..., None] * experts).sum(1)  # (items, hidden)

    def attention(x: Any, allowed: Any, qkv: Any, out: Any, training: bool) -> Any:
        """Masked multi-head self-attention of ``x`` (batch, len, hidden) through the projections ``qkv`` and
        ``out``."""
        b, n, d = x.shape
        q, k, v = qkv(x).view(b, n, 3, cfg.heads, d // cfg.heads).permute(2, 0, 3, 1, 4)
        att = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=cfg.dropout if training else 0.0
        )  # (batch, heads, len, hd)
        return out(att.transpose(1, 2).reshape(b, n, d))

    class Block(nn.Module):  # type: ignore[name-defined]
        """Pre-norm transformer block: masked self-attention, then a GELU MLP, both residual."""

        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(cfg.hidden), nn.LayerNorm(cfg.hidden)
            self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
            self.out = nn.Linear(cfg.hidden, cfg.hidden)
            self.mlp = nn.Sequential(
                nn.Linear(cfg.hidden, 4 * cfg.hidden), nn.GELU(), nn.Linear(4 * cfg.hidden, cfg.hidden)
            )
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x: Any, allowed: Any) -> Any:  # x: (batch, len, hidden); allowed: (batch, 1, len, len)
            x = x + self.drop(attention(self.ln1(x), allowed, self.qkv, self.out, self.training))
            return x + self.drop(self.mlp(self.ln2(x)))

    class LiGRBlock(nn.Module):  # type: ignore[name-defined]
        """LiGR: pre-norm attention and a SwiGLU feed-forward, each residual branch gated by a sigmoid of the
        branch's input (the gate decides per unit how much of the update to let through)."""

        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(cfg.hidden), nn.LayerNorm(cfg.hidden)
            self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
            self.out = nn.Linear(cfg.hidden, cfg.hidden)
            self.gate1, self.gate2 = nn.Linear(cfg.hidden, cfg.hidden), nn.Linear(cfg.hidden, cfg.hidden)
            self.up = nn.Linear(cfg.hidden, 2 * 4 * cfg.hidden, bias=False)  # SwiGLU's value and gate halves
            self.down = nn.Linear(4 * cfg.hidden, cfg.hidden, bias=False)
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x: Any, allowed: Any) -> Any:  # x: (batch, len, hidden); allowed: (batch, 1, len, len)
            x = x + torch.sigmoid(self.gate1(x)) * self.drop(
                attention(self.ln1(x), allowed, self.qkv, self.out, self.training)
            )
            value, gate = self.up(self.ln2(x)).chunk(2, dim=-1)  # (batch, len, 4 * hidden) each
            return x + torch.sigmoid(self.gate2(x)) * self.drop(self.down(torch.nn.functional.silu(gate) * value))

    class Net(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.adaptor = TextAdaptor() if cfg.use_text else None
            self.ids = nn.Embedding(n_items, cfg.hidden) if cfg.use_ids else None
            if self.ids is not None:
                nn.init.normal_(self.ids.weight, std=0.02)
            self.pos = nn.Embedding(cfg.max_len, cfg.hidden)
            nn.init.normal_(self.pos.weight, std=0.02)  # positions must not drown the item signal at the start
            self.blocks = nn.ModuleList((LiGRBlock() if cfg.block == "ligr" else Block()) for _ in range(cfg.layers))
            self.norm = nn.LayerNorm(cfg.hidden)
            self.drop = nn.Dropout(cfg.dropout)

        def items(self, text: Any, seen: Any, id_keep: Any = None, index: Any = None) -> Any:
            """Representations of all items plus a zero padding row: (items + 1, hidden); with
            ``index`` (item indices), of those items only: (len(index) + 1, hidden)."""
            ids = self.ids.weight if self.ids is not None else None
            if index is not None:
                text, seen = text[index], seen[index]
                id_keep = id_keep[index] if id_keep is not None else None
                ids = ids[index] if ids is not None else None
            rep: Any = 0
            if self.adaptor is not None:
                rep = rep + self.adaptor(text)
            if ids is not None:
                mask = seen if id_keep is None else seen * id_keep
                rep = rep + ids * mask[:, None]
            return torch.cat([torch.zeros_like(rep[:1]), rep], 0)

        def forward(self, seq: Any, table: Any) -> Any:
            """seq: (batch, len) item ids + 1, 0 = padding → hidden states (batch, len, hidden)."""
            length = seq.shape[1]
            x = self.drop(table[seq] + self.pos.weight[None, -length:])
            # Causal, and no attending to padding; every position may attend to itself, so a
            # padded row is never all-masked (which would turn into NaN and leak).
            allowed = (
                torch.tril(torch.ones(length, length, dtype=torch.bool, device=seq.device))[None]
                & (seq != 0)[:, None, :]
            )
            allowed |= torch.eye(length, dtype=torch.bool, device=seq.device)[None]
            for block in self.blocks:
                x = block(x, allowed[:, None])
            return self.norm(x)

    return Net()


def average_gradients(params: list[Any]) -> None:
    """Average the gradients of ``params`` over the workers of the torch process group: one
    all-reduce of one flat buffer (a parameter without a gradient here counts as zeros, so every
    worker sends the same shapes)."""
    torch = torch_module()
    dist = torch.distributed
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset : offset + g.numel()].view_as(g)
        offset += g.numel()
