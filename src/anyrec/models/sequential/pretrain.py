"""One text-only sequential recommender pretrained across catalogs, and starting a fit from it.

:func:`pretrain` trains the text path of the sequential model (adaptor over the frozen sentence
vectors, transformer, no item ids) on several datasets at once: every epoch takes each source's
training windows in batches (each source keeps the softmax, bucketing and batch size its own size
calls for, see :func:`sized_for`), shuffles all the batches together, so the mix follows the
sources' sizes, and validates on each source's held-out last items (early stopping on their NDCG@10
weighted by each source's share of the training windows). The folder it writes (``pretrained.json`` +
``pretrained.npz``, with the training log and a
checkpoint to resume from) is what ``--init DIR`` reads: since items are their text, the network
scores any catalog, one it never saw included, with or without further training there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.errors import ConfigError
from anyrec.lm.encoder import encoder_settings
from anyrec.models.sequential.config import SequentialConfig, check_choices, sized_for
from anyrec.models.sequential.network import build_network, item_rows, query_side, torch_module
from anyrec.models.sequential.training import (
    StepInputs,
    batch_loss,
    epoch_batches,
    held_out_gains,
    set_learning_rate,
    windows,
)
from anyrec.training import TrainingLoop

log = logging.getLogger(__name__)

META, WEIGHTS = "pretrained.json", "pretrained.npz"
FORMAT = "anyrec-pretrained-sequential/1"
# The settings a model started from a pretrained folder takes from it: they shape the weights
# (and the encoder shapes the item vectors the adaptor reads).
ARCHITECTURE = ("encoder", "hidden", "layers", "heads", "max_len", "experts", "temperature", "center_text", "block")


@dataclass
class Source:
    """One pretraining dataset: its item text vectors, item sequences (index + 1) and name."""

    name: str
    text: np.ndarray
    seqs: list[np.ndarray]


def make_source(
    name: str, texts: list[str], vectors: np.ndarray, seqs: list[np.ndarray]
) -> tuple[Source, dict[str, int]]:
    """A pretraining source from a catalog's texts, their vectors and each user's item sequence (0-based).

    The network reads items by their text alone, so events on items with blank text teach it nothing
    (a MIND sample's history clicks are mostly news without a row): they leave the sequences, counted in
    the report. A source left without a sequence of two items is refused by name."""
    has_text = np.array([bool(t.strip()) for t in texts], dtype=bool)
    kept = [q[has_text[q]] for q in seqs]
    report = {
        "events": int(sum(len(q) for q in seqs)),
        "events_on_items_without_text": int(sum(len(q) for q in seqs)) - int(sum(len(q) for q in kept)),
        "items_without_text": int((~has_text).sum()),
    }
    if not any(len(q) > 1 for q in kept):
        raise ConfigError(
            f"{name}: no user has two events on items with text ({report['items_without_text']:,} of "
            f"{len(texts):,} items have none): nothing to pretrain on"
        )
    return Source(name, vectors, [q + 1 for q in kept]), report


def pretrain(
    sources: list[Source],
    cfg: SequentialConfig,
    out: str | Path,
    *,
    valid_users: int = 1000,
    progress: Callable[[str, int, int], None] | None = None,
    read: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Pretrain on ``sources`` into the folder ``out`` (``cfg.resume`` continues its checkpoint); returns
    what ``pretrained.json`` records: settings, the sources with their share of the steps (and, from
    ``read``, what :func:`make_source` left out of each), figures, cost."""
    torch = torch_module()
    if not sources:
        raise ConfigError("pretraining needs at least one source dataset")
    dims = {s.text.shape[1] for s in sources}
    if len(dims) != 1:
        raise ConfigError(f"every source must be encoded by one encoder; got vector sizes {sorted(dims)}")
    cfg = replace(cfg, use_text=True, use_ids=False, id_dropout=0.0, log_dir=str(out))
    check_choices(cfg)
    torch.manual_seed(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    pool = np.vstack([_network_text(s.text, cfg) for s in sources])
    pool = pool[rng.choice(len(pool), min(len(pool), 20_000), replace=False)]
    net = build_network(1, pool.shape[1], cfg, pool).to(device)  # no id table: the network fits any catalog
    prepared = [_prepare(s, cfg, net, gen, device, rng, valid_users) for s in sources]
    # The stopping figure weighs each source by its share of the training windows: it follows what the network
    # mostly learns, not the swings of a small source's validation (a MIND sample's moved 0.04-0.16 between epochs).
    windows_total = sum(len(p["data"]) for p in prepared)
    weight = {p["name"]: len(p["data"]) / max(1, windows_total) for p in prepared}
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loop = TrainingLoop(cfg.patience, cfg.max_minutes or 0.0, 1e-6, str(out))
    steps = np.zeros(len(prepared), dtype=np.int64)
    if cfg.resume:

        def restore(ck: dict[str, Any]) -> None:
            net.load_state_dict(ck["net"])
            opt.load_state_dict(ck["opt"])
            gen.set_state(ck["gen"])
            steps[:] = ck["steps"]

        loop.resume(restore, map_location=device)
    for epoch in range(loop.next_epoch, cfg.epochs):
        if loop.out_of_patience():
            break
        net.train()
        plan = [
            (j, idx)
            for j, p in enumerate(prepared)
            for idx in epoch_batches(
                torch.randperm(len(p["data"]), generator=gen),
                p["data"],
                gen,
                p["step"].cfg.batch_size,
                bool(p["step"].cfg.bucket_by_length),
            )
        ]
        order = torch.randperm(len(plan), generator=gen).tolist()
        total = 0.0
        for b, i in enumerate(order, 1):
            j, idx = plan[i]
            if cfg.warmup_steps > 0 or cfg.lr_schedule != "constant":
                set_learning_rate(opt, cfg, epoch * len(plan) + b - 1, len(plan))
            loss = batch_loss(prepared[j]["data"][idx], prepared[j]["step"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps[j] += 1
            total += float(loss.detach())
            loop.report(progress, "pretrain", epoch, cfg.epochs, b, len(plan), total / b)
        net.eval()
        per = {p["name"]: round(holdout_ndcg(net, p, cfg), 6) for p in prepared}
        score = float(sum(weight[p["name"]] * per[p["name"]] for p in prepared))
        mean_loss = total / max(1, len(plan))
        entry = {
            "epoch": epoch,
            "loss": mean_loss,
            "seconds": round(loop.seconds(), 2),
            "valid_ndcg@10": round(score, 6),
            "valid_by_source": per,
        }
        if loop.record(entry, score, lambda: {k: v.detach().clone() for k, v in net.state_dict().items()}):
            _write_weights(out, loop.best_state)
        log.info("pretrain epoch %d loss %.4f valid ndcg@10 %.4f %s", epoch, mean_loss, score, per)
        loop.report(progress, "pretrain", epoch, cfg.epochs, len(plan), len(plan), mean_loss)
        loop.save(
            epoch, {"net": net.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "steps": steps.copy()}
        )
        if loop.should_stop():
            break
    loop.finish(progress, "pretrain")
    if loop.best_state is None:
        raise ConfigError("pretraining ran no epoch (epochs 0, or the checkpoint had already finished without a best)")
    meta = {
        "format": FORMAT,
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("log_dir", "resume", "cache_dir")},
        "sources": [
            {
                "name": p["name"],
                "items": p["items"],
                "users": p["users"],
                "training_windows": len(p["data"]),
                "weight_in_validation": round(weight[p["name"]], 4),
                "validation_users": len(p["hold"]),
                "steps": int(steps[j]),
                "share_of_steps": round(float(steps[j] / max(1, steps.sum())), 4),
                "settings": p["sized"],
                **(read or {}).get(p["name"], {}),
            }
            for j, p in enumerate(prepared)
        ],
        "epochs": len(loop.history),
        "steps": int(steps.sum()),
        "seconds": round(loop.seconds(), 1),
        "device": device,
        "best_valid_ndcg@10": round(loop.best, 6),
        "history": loop.history,
    }
    Path(out, META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def _prepare(
    s: Source, cfg: SequentialConfig, net: Any, gen: Any, device: str, rng: np.random.Generator, valid_users: int
) -> dict[str, Any]:
    """A source's training windows, its held-out validation users, and its step inputs sized to it."""
    torch = torch_module()
    long = np.array([u for u, q in enumerate(s.seqs) if len(q) > 2], dtype=np.int64)
    held = np.sort(rng.choice(long, min(len(long), valid_users), replace=False)) if len(long) else long
    is_held = np.zeros(len(s.seqs), dtype=bool)
    is_held[held] = True
    data = windows([q[:-1] if is_held[u] else q for u, q in enumerate(s.seqs)], cfg.max_len)
    sized, chosen = sized_for(cfg, len(s.text), [int(n) for n in (data[:, :-1] != 0).sum(1)])
    log.info("pretrain source %s: %s", s.name, "; ".join(f"{k}={v}" for k, v in chosen.items()))
    n = len(s.text)
    step = StepInputs(
        net,
        torch.from_numpy(_network_text(s.text, cfg)).to(device),
        torch.zeros(n, device=device),
        None,
        gen,
        torch.zeros(n + 1, dtype=torch.long, device=device),
        n,
        device,
        sized,
    )
    return {
        "name": s.name,
        "data": torch.from_numpy(data.astype(np.int64)),
        "step": step,
        "sized": chosen,
        "items": n,
        "users": int(sum(len(q) > 0 for q in s.seqs)),
        "hold": np.array([s.seqs[u][-1] for u in held], dtype=np.int64),
        "inputs": [s.seqs[u][:-1] for u in held],
    }


def _network_text(text: np.ndarray, cfg: SequentialConfig) -> np.ndarray:
    """A source's text vectors as the network reads them: with ``center_text``, less the catalog's own mean."""
    text = np.asarray(text, dtype=np.float32)
    return text - text.mean(0) if cfg.center_text else text


def holdout_ndcg(net: Any, p: dict[str, Any], cfg: SequentialConfig, batch: int = 256) -> float:
    """NDCG@10 of each held-out last item among the source's whole catalog, the user's earlier items masked."""
    torch = torch_module()
    if not len(p["hold"]):
        return 0.0
    step: StepInputs = p["step"]
    gains = []
    with torch.no_grad():
        table = net.items(step.text, step.seen)
        items = item_rows(table[1:], cfg.temperature)
        for b in range(0, len(p["hold"]), batch):
            inputs = p["inputs"][b : b + batch]
            n = min(cfg.max_len, max(len(s) for s in inputs))
            seq = torch.from_numpy(
                np.stack([np.pad(s[-n:], (n - len(s[-n:]), 0)) for s in inputs]).astype(np.int64)
            ).to(step.device)
            scores = (query_side(net(seq, table)[:, -1], cfg.temperature) @ items.T).cpu().numpy()
            gains.append(held_out_gains(scores, inputs, p["hold"][b : b + batch]))
    return float(np.concatenate(gains).mean())


def _write_weights(out: str | Path, state: dict[str, Any]) -> None:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / WEIGHTS, **{k: v.detach().cpu().numpy() for k, v in state.items()})


def read_pretrained(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``pretrained.json`` and the weights of a folder :func:`pretrain` wrote; a clear error otherwise."""
    path = Path(folder)
    if not (path / META).is_file() or not (path / WEIGHTS).is_file():
        raise ConfigError(
            f"{path}: not a pretrained model folder (no {META} / {WEIGHTS}; `anyrec pretrain-rec` writes one)"
        )
    meta = json.loads((path / META).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{path / META}: format {meta.get('format')!r}, expected {FORMAT!r}")
    with np.load(path / WEIGHTS) as npz:
        return meta, {k: npz[k] for k in npz.files}


def with_architecture(cfg: SequentialConfig, meta: dict[str, Any]) -> SequentialConfig:
    """``cfg`` with the settings that shape the pretrained weights taken from ``meta`` (the rest stay)."""
    known = {f.name for f in fields(cfg)}
    given = {k: meta["config"][k] for k in ARCHITECTURE if k in meta["config"] and k in known}
    if "encoder" in given:  # its model, read through this machine's other settings (cache, threads, batch)
        given["encoder"] = replace(cfg.encoder, model=encoder_settings(given["encoder"]).model)
    changed = {k: v for k, v in given.items() if getattr(cfg, k) != v}
    if changed:
        log.info("from the pretrained model: %s", ", ".join(f"{k}={v}" for k, v in changed.items()))
    return replace(cfg, use_text=True, **given)


def load_weights(net: Any, weights: dict[str, np.ndarray]) -> list[str]:
    """Copy the pretrained weights into ``net`` (its id table, if any, starts at zero); returns the keys left new."""
    torch = torch_module()
    own = net.state_dict()
    missing = sorted(set(weights) - set(own))
    if missing:
        raise ConfigError(f"the pretrained weights do not fit this network: {', '.join(missing)} unknown")
    for k, v in weights.items():
        if tuple(own[k].shape) != v.shape:
            raise ConfigError(f"the pretrained weight {k} has shape {v.shape}, the network {tuple(own[k].shape)}")
    new = sorted(set(own) - set(weights))
    # New weights (an id table) start at zero, so the network computes exactly what the pretrained one
    # did until training moves them: the fit starts from the pretrained figure, not near it.
    net.load_state_dict(
        {**{k: torch.zeros_like(own[k]) for k in new}, **{k: torch.from_numpy(np.array(v)) for k, v in weights.items()}}
    )
    return new
