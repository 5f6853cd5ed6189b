"""Causal-LM training of the code decoder: length-bucketed batches; early stopping, the budget, the log
and checkpoints are the shared :class:`anyrec.training.TrainingLoop`'s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from anyrec.models.generative.decoder import PAD
from anyrec.training import TrainingLoop

log = logging.getLogger(__name__)


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Windows of similar length share a batch (sorted within chunks of 50 batches); batch order shuffled."""
    perm = rng.permutation(len(lengths))
    out = []
    for c in range(0, len(perm), batch_size * 50):
        chunk = perm[c : c + batch_size * 50]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def collate(windows: list[tuple[np.ndarray, int]], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded ``(input_ids, attention_mask, labels)`` for the windows ``idx``; labels are -100
    on padding, on BOS and on a window's context-only first item."""
    width = max(len(windows[i][0]) for i in idx)
    ids = np.full((len(idx), width), PAD, dtype=np.int64)
    labels = np.full((len(idx), width), -100, dtype=np.int64)
    for r, i in enumerate(idx):
        toks, first = windows[i]
        ids[r, : len(toks)] = toks
        labels[r, first : len(toks)] = toks[first:]
    return ids, (ids != PAD).astype(np.int64), labels


def train_decoder(net: Any, windows: list[tuple[np.ndarray, int]], cfg: Any, evaluate: Callable[[], float],
                  progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Train ``net`` on ``windows``; ``evaluate()`` gives the validation NDCG@10 after each epoch
    (every ``cfg.valid_every``); the best weights are kept. Returns the training log summary."""
    import torch

    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    net.to(device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, getattr(cfg, "warmup_steps", 0))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
    lengths = np.array([len(w[0]) for w in windows])
    loop = TrainingLoop(cfg.patience, cfg.max_minutes, 1e-6, cfg.log_dir or None)

    def restore(state: dict[str, Any]) -> None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]

    if cfg.resume:
        loop.resume(restore, map_location=device)
    for epoch in range(loop.next_epoch, cfg.epochs):
        if loop.out_of_patience():
            break
        net.train()
        total, n = 0.0, 0
        batches = _batches(lengths, cfg.batch_size, rng)
        for b, idx in enumerate(batches):
            ids, mask, labels = (torch.from_numpy(a).to(device) for a in collate(windows, idx))
            loss = net(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total, n = total + float(loss.detach()), n + 1
            loop.report(progress, "generative", epoch, cfg.epochs, b + 1, len(batches), total / n)
        net.eval()
        entry: dict[str, Any] = {
            "epoch": epoch,
            "loss": round(total / max(1, n), 5),
            "seconds": round(loop.seconds(), 2),
        }
        late = loop.no_time_for_an_epoch(
            pending=entry["seconds"]
        )  # no time for another: this last one is validated too
        score = None
        if (epoch + 1) % max(1, cfg.valid_every) == 0 or epoch + 1 == cfg.epochs or late:
            score = evaluate()
            entry["valid_ndcg@10"] = round(score, 6)
        improved = loop.record(entry, score, lambda: {k: v.detach().clone() for k, v in net.state_dict().items()})
        if score is not None:
            log.info(
                "generative epoch %d loss %.4f valid ndcg@10 %.4f%s",
                epoch,
                entry["loss"],
                score,
                " *" if improved else "",
            )
        loop.save(
            epoch,
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng.bit_generator.state,
            },
        )
        loop.report(progress, "generative", epoch, cfg.epochs, len(batches), len(batches), entry["loss"])
        if loop.out_of_patience() or late:
            break
    loop.finish(progress, "generative")
    if loop.best_state is not None:
        net.load_state_dict(loop.best_state)
    net.eval()
    return {
        "best_valid_ndcg": loop.best,
        "epochs": len(loop.history),
        "history": loop.history,
        "seconds": round(loop.seconds(), 2),
    }
