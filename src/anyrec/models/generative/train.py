"""Causal-LM training of the code decoder: length-bucketed batches, early stopping, checkpoints."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.models.generative.decoder import PAD

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
    log_path = Path(cfg.log_dir) / "train_log.jsonl" if cfg.log_dir else None
    ckpt = Path(cfg.log_dir) / "checkpoint.pt" if cfg.log_dir else None
    start, best, best_state, waited, history = 0, -1.0, None, 0, []
    if cfg.resume and ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        start, best, best_state, waited, history = state["epoch"] + 1, state["best"], state["best_state"], state["waited"], state["history"]
        log.info("resumed from %s at epoch %d (best %.4f)", ckpt, start, best)
    t0 = time.perf_counter()
    for epoch in range(start, cfg.epochs):
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
            if progress and b % 50 == 0:
                progress(f"train generative, epoch {epoch + 1} (loss {total / n:.3f})", b, len(batches))
        net.eval()
        entry: dict[str, Any] = {"epoch": epoch, "loss": round(total / max(1, n), 5), "seconds": round(time.perf_counter() - t0, 2)}
        out_of_time = cfg.max_minutes > 0 and (time.perf_counter() - t0) / 60 > cfg.max_minutes
        if (epoch + 1) % max(1, cfg.valid_every) == 0 or epoch + 1 == cfg.epochs or out_of_time:
            score = evaluate()
            entry["valid_ndcg@10"] = round(score, 6)
            if score > best + 1e-6:
                best, waited = score, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
            log.info("generative epoch %d loss %.4f valid ndcg@10 %.4f%s", epoch, entry["loss"], score, " *" if waited == 0 else "")
        history.append(entry)
        if log_path is not None and ckpt is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng.bit_generator.state, "epoch": epoch,
                        "best": best, "best_state": best_state, "waited": waited, "history": history}, ckpt)
        if waited >= cfg.patience or out_of_time:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return {"best_valid_ndcg": best, "epochs": len(history), "history": history, "seconds": round(time.perf_counter() - t0, 2)}
