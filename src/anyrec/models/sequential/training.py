"""The sequential model's training data and one step's loss: windows cut from each history, epoch
batches (optionally by length), and the full or sampled softmax over the item table.

:func:`run_epochs` is the epoch loop (data-parallel aware), with the shared bookkeeping of
:class:`anyrec.training.TrainingLoop`; the model prepares the data and scores validation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from anyrec.models.sequential.config import SequentialConfig
from anyrec.models.sequential.network import average_gradients, item_rows, query_side, torch_module
from anyrec.training import TrainingLoop

log = logging.getLogger(__name__)


def held_out_gains(scores: np.ndarray, inputs: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """NDCG@10 gain of each row's held-out item (``targets``: index + 1) among every item's ``scores``, the
    row's earlier items (``inputs``: index + 1) masked; ties count against the held-out item."""
    for r, s in enumerate(inputs):
        scores[r, s - 1] = -np.inf
    t = scores[np.arange(len(inputs)), targets - 1]
    rank = (scores > t[:, None]).sum(1) + (scores == t[:, None]).sum(1) - 1
    return np.where(rank < 10, 1.0 / np.log2(rank + 2), 0.0)


def windows(seqs: list[np.ndarray], max_len: int) -> np.ndarray:
    """Training windows of ``max_len + 1`` items, cut from the end, left-padded with 0."""
    out = []
    for s in seqs:
        end = len(s)
        while end > 1:
            start = max(0, end - max_len - 1)
            w = s[start:end]
            out.append(np.pad(w, (max_len + 1 - len(w), 0)))
            end = start + 1 if start > 0 else 0
    return np.stack(out) if out else np.zeros((0, max_len + 1), dtype=np.int64)


def epoch_batches(perm: Any, data: Any, gen: Any, bs: int, by_length: bool) -> list[Any]:
    """Index batches of one epoch. ``by_length``: windows of similar length share a batch (sorted within
    chunks of 50 batches, batch order shuffled), so short histories are not padded to the longest window
    of a random batch."""
    torch = torch_module()
    if not by_length:
        return [perm[b : b + bs] for b in range(0, len(perm), bs)]
    lengths = (data != 0).sum(1)
    out = []
    for c in range(0, len(perm), bs * 50):
        chunk = perm[c : c + bs * 50]
        chunk = chunk[torch.argsort(lengths[chunk], stable=True)]
        out += [chunk[b : b + bs] for b in range(0, len(chunk), bs)]
    return [out[int(i)] for i in torch.randperm(len(out), generator=gen)]


def softmax_loss(h: Any, y: Any, items: Any, neg: Any, n_catalog: int, temperature: float) -> Any:
    """Cross-entropy of the targets ``y`` (rows of ``items``): over every row (``neg`` None), or
    sampled softmax over the target and the shared negatives ``neg`` (rows of ``items``) with the
    log-count correction for uniform draws from ``n_catalog`` items."""
    torch = torch_module()
    h, items = query_side(h, temperature), item_rows(items, temperature)
    if neg is None:
        return torch.nn.functional.cross_entropy(h @ items.T, y)
    logits = torch.cat([(h * items[y]).sum(-1, keepdim=True), h @ items[neg].T], 1)
    correction = math.log(len(neg) / n_catalog)
    logits[:, 1:] = logits[:, 1:].masked_fill(neg[None, :] == y[:, None], -1e9) - correction
    return torch.nn.functional.cross_entropy(logits, torch.zeros_like(y))


@dataclass
class StepInputs:
    """What every step of one fit reads: the network, the item text (tensor), which items were seen in
    training, the tuned encoder layers (or ``None``), the random generator and a scratch id map."""

    net: Any
    text: Any  # (items, text_dim)
    seen: Any  # (items,)
    tuner: Any
    gen: Any
    remap: Any  # (items + 1,) zeros between steps
    n_items: int
    device: str
    cfg: SequentialConfig


def batch_loss(batch: Any, s: StepInputs) -> Any:
    """The loss of one batch of windows ``(batch, max_len + 1)``: next-item cross-entropy at every position."""
    torch = torch_module()
    cfg = s.cfg
    # Windows are left-padded: drop the columns that are padding for the whole batch.
    first = int((batch != 0).float().argmax(1).min())
    batch = batch[:, min(first, batch.shape[1] - 2) :].to(s.device)
    inp, tgt = batch[:, :-1], batch[:, 1:]  # (batch, len)
    keep = None
    if cfg.id_dropout > 0 and cfg.use_ids:
        keep = (torch.rand(s.n_items, generator=s.gen) >= cfg.id_dropout).float().to(s.device)
    neg = None
    if (cfg.sampled_softmax or 0) > 0:  # shared uniform negatives for the whole batch
        neg = torch.randint(0, s.n_items, (cfg.sampled_softmax,), generator=s.gen).to(s.device)
    index = None
    if neg is not None and s.tuner is None:
        # Only the batch's items and the negatives need representations: the text
        # adaptor runs over them, not the whole catalog, and ids are renumbered to them.
        index = torch.unique(torch.cat([neg, batch[batch > 0] - 1]))
        s.remap[index + 1] = torch.arange(1, len(index) + 1, device=s.device)
        batch, neg = s.remap[batch], s.remap[neg + 1] - 1
        s.remap[index + 1] = 0  # clean for the next batch: no catalog-sized array per step
        inp, tgt = batch[:, :-1], batch[:, 1:]
    step_text = s.text
    if s.tuner is not None:
        # The items this step touches go through the tuned layers, with gradients.
        touched = torch.unique(batch[batch > 0]) - 1
        if len(touched) > cfg.finetune_items:
            touched = touched[torch.randperm(len(touched), generator=s.gen)[: cfg.finetune_items].to(s.device)]
        step_text = s.text.index_put((touched,), s.tuner(touched))
    table = s.net.items(step_text, s.seen, keep, index)  # (items + 1, hidden)
    hidden = s.net(inp, table)  # (batch, len, hidden)
    mask = tgt > 0
    h, y = hidden[mask], tgt[mask] - 1  # (targets, hidden), (targets,)
    return softmax_loss(h, y, table[1:], neg, s.n_items, cfg.temperature)


def resume(loop: TrainingLoop, step: StepInputs, opt: Any) -> bool:
    """Continue from the loop's checkpoint: network, tuned encoder layers (and the item text they give),
    optimiser and random generator."""
    def restore(ck: dict[str, Any]) -> None:
        step.net.load_state_dict(ck["net"])
        if step.tuner is not None:
            step.tuner.load_state_dict(ck["tuner"])
            step.text = step.tuner.all_vectors()
        opt.load_state_dict(ck["opt"])
        step.gen.set_state(ck["gen"])

    return loop.resume(restore, map_location=step.device)


def snapshot(step: StepInputs) -> Any:
    """The weights kept for the best epoch (with a tuned encoder: its layers and the item vectors they give)."""
    best = {k: v.detach().clone() for k, v in step.net.state_dict().items()}
    if step.tuner is None:
        return best
    return {"net": best, "tuner": {k: v.detach().clone() for k, v in step.tuner.state_dict().items()},
            "text": step.text.detach().cpu().numpy().copy()}


def set_learning_rate(opt: Any, cfg: SequentialConfig, step: int, steps_per_epoch: int) -> None:
    """Each parameter group's rate at global ``step`` (from 0): its base rate (``base_lr``) times the linear
    warm-up over ``cfg.warmup_steps`` and, with ``cosine``, half a cosine down to 0 over ``cfg.epochs`` epochs."""
    factor = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    if cfg.lr_schedule == "cosine":
        after = max(0, step - cfg.warmup_steps)
        horizon = max(1, cfg.epochs * steps_per_epoch - cfg.warmup_steps)
        factor *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, after / horizon)))
    for group in opt.param_groups:
        group["lr"] = group.setdefault("base_lr", group["lr"]) * factor


def run_epochs(
    loop: TrainingLoop,
    step: StepInputs,
    data: Any,
    opt: Any,
    params: list[Any],
    evaluate: Callable[[], float],
    name: str,
    progress: Callable[[str, int, int], None] | None = None,
    rank: int = 0,
    world: int = 1,
) -> None:
    """Train on the windows ``data`` until ``cfg.epochs``, the patience or the budget runs out. After each
    epoch ``evaluate()`` (the weights in eval mode, ``step.text`` refreshed) gives the validation NDCG@10.

    Data-parallel (``world`` > 1): every worker draws the same permutation and takes its share, gradients
    are averaged, rank 0's validation figure decides for all, and they stop together."""
    torch = torch_module()
    cfg = step.cfg
    for epoch in range(loop.next_epoch, cfg.epochs):
        if loop.out_of_patience():
            break
        step.net.train()
        if step.tuner is not None:
            step.tuner.train()
        perm = torch.randperm(len(data), generator=step.gen)
        if world > 1:
            perm = perm[rank::world]
        total, batches = 0.0, 0
        chunks = epoch_batches(perm, data, step.gen, max(1, (cfg.batch_size or 1) // world), bool(cfg.bucket_by_length))
        for idx in chunks:
            if cfg.warmup_steps > 0 or cfg.lr_schedule != "constant":
                set_learning_rate(opt, cfg, epoch * len(chunks) + batches, len(chunks))
            loss = batch_loss(data[idx], step)
            opt.zero_grad()
            loss.backward()
            if world > 1:
                average_gradients(params)
            opt.step()
            total += float(loss.detach())
            batches += 1
            loop.report(progress if rank == 0 else None, name, epoch, cfg.epochs, batches, len(chunks), total / batches)
        entry = {"epoch": epoch, "loss": total / max(1, batches), "seconds": round(loop.seconds(), 2)}
        step.net.eval()
        if step.tuner is not None:
            step.text = step.tuner.all_vectors()
        score = evaluate()
        if world > 1:  # the workers hold the same weights; rank 0's figure decides for all, to the last bit
            figure = torch.tensor([score], dtype=torch.float64)
            torch.distributed.broadcast(figure, src=0)
            score = float(figure.item())
        entry["valid_ndcg@10"] = round(score, 6)
        improved = loop.record(entry, score, lambda: snapshot(step))
        log.info("epoch %d loss %.4f valid ndcg@10 %.4f%s", epoch, entry["loss"], score, " *" if improved else "")
        loop.report(progress if rank == 0 else None, name, epoch, cfg.epochs, len(chunks), len(chunks), entry["loss"])
        loop.save(
            epoch,
            {
                "net": step.net.state_dict(),
                "tuner": step.tuner.state_dict() if step.tuner is not None else None,
                "opt": opt.state_dict(),
                "gen": step.gen.get_state(),
                "config": asdict(cfg),
            },
        )
        if loop.should_stop():
            break
    loop.finish(progress if rank == 0 else None, name)
