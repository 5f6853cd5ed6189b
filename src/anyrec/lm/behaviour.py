"""A sentence encoder trained on what people do, across catalogs (``anyrec pretrain-encoder``).

Off-the-shelf sentence encoders learn which sentences *mean the same*; a recommender needs which items
*the same people take*. :func:`train_encoder` trains a **behaviour head** on a sentence encoder: a linear
layer between its pooling and its normalisation (a sentence-transformers ``Dense`` module, identity at
the start), contrastively, on behaviour pooled from any number of catalogs:

- **pairs**: (a user's recent history, the next item) and (an item, an item the same user took shortly
  before it); the history side is the unit mean of its items' vectors, which is how zero-shot scores;
- **negatives**: every other item of the pair's catalog, exactly: a soft-max over the whole catalog (the
  user's history left out), the ranking the encoder is judged by. Each step draws one catalog
  (probability ∝ pairs^``mix``), so negatives never come from another domain;
- **temperature**: learnt, starting where the encoder as it came is calibrated;
- **validation**: each catalog's held-out last items ranked among the whole catalog by the cosine with
  the mean of the user's history (zero-shot's score; history masked; the held-out item loses ties); the
  mean over catalogs picks the best round; round 0 is the encoder as it came, so a run that teaches
  nothing keeps it, and says so.

Why a head and not the transformer's layers (measured on Amazon Scientific, 2 cores): training the top
two of MiniLM's six layers over their cached inputs lowered the held-out NDCG@10 at every setting tried
(0.0686 as it came → 0.0555 after 150 steps with in-batch negatives; 0.0601 after 60 steps of 256 pairs
at lr 5e-6 with the whole catalog as negatives), while the head, whose every item vector is one product
away from the cached sentence vectors, trains on the exact whole-catalog soft-max: 0.067 → 0.095 on the
same catalog's held-out users. The same code runs on a GPU (``device``).

The folder written is a sentence-transformers folder (``--encoder DIR`` everywhere: Transformer, Pooling,
Dense, Normalize) with ``behaviour.json`` (sources, steps, figures, cost) and ``training/`` (the log and
the checkpoint ``resume`` continues from).
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.errors import ConfigError
from anyrec.lm.encoder import DEFAULT_ENCODER, EncoderConfig, TextEncoder
from anyrec.lm.head import Head, save_with_head

log = logging.getLogger(__name__)

META = "behaviour.json"
FORMAT = "anyrec-behaviour-encoder/1"


@dataclass(frozen=True)
class BehaviourConfig:
    """Contrastive training of a behaviour head on a sentence encoder.

    Attributes:
        encoder: the encoder to start from (name or folder, see :class:`~anyrec.lm.encoder.EncoderConfig`).
        batch_size: pairs per step (every other item of the catalog is a negative of each).
        history: most recent items on the history side of a (history, next item) pair.
        item_pairs: share of (item, item) pairs among the pairs drawn.
        lr: learning rate (Adam) of the head.
        temperature: of the soft-max over cosines; ``None``: learnt (a logit scale, as CLIP's), starting where the
            encoder as it came is calibrated (the value of a grid with the lowest loss on the first batches).
        mix: a step's catalog is drawn with probability ∝ (its pairs)^mix.
        round_steps: steps between validations (a round; the best round's head is kept).
        rounds: at most this many rounds.
        max_minutes: time budget (0 = none); no round begins that would end past it.
        patience: stop after this many rounds without a better validation figure.
        valid_users: users per catalog whose last item is held out for validation (at most a fifth of them).
        seed: seed of the sampling and the held-out users.
        threads: torch CPU threads (0 = torch's default).
        device: ``cpu``, ``cuda`` or ``auto``.
    """

    encoder: str = DEFAULT_ENCODER
    batch_size: int = 256
    history: int = 5
    item_pairs: float = 0.5
    lr: float = 1e-3
    temperature: float | None = None
    mix: float = 0.5
    round_steps: int = 100
    rounds: int = 60
    max_minutes: float = 20.0
    patience: int = 5
    valid_users: int = 500
    seed: int = 0
    threads: int = 0
    device: str = "auto"


@dataclass
class BehaviourSource:
    """One catalog's texts and its users' item sequences (0-based item indices, oldest first)."""

    name: str
    texts: list[str]
    seqs: list[np.ndarray]


@dataclass
class _Prepared:
    name: str
    vectors: np.ndarray  # (n_items, dim) the encoder's unit vectors (zero rows for items without text)
    unranked: np.ndarray  # (n_items,) items without text: in no soft-max, never ranked
    seqs: list[np.ndarray]  # training sequences (item indices)
    ex_user: np.ndarray  # (pairs,) a pair = the item at ex_pos of ex_user's sequence, after what came before
    ex_pos: np.ndarray
    valid: list[tuple[np.ndarray, int]]  # (history, held-out item)
    users: int
    dropped: int  # events on items without text


def prepare_source(s: BehaviourSource, vectors: np.ndarray, valid_users: int, rng: np.random.Generator) -> _Prepared:
    """A source's pairs and held-out users (events on items without text leave the sequences, counted)."""
    has_text = np.array([bool(t.strip()) for t in s.texts], dtype=bool)
    kept = [q[has_text[q]] for q in s.seqs]
    dropped = int(sum(len(q) for q in s.seqs) - sum(len(q) for q in kept))
    usable = [u for u, q in enumerate(kept) if len(q) > 1]
    if not usable:
        raise ConfigError(f"{s.name}: no user has two events on items with text: nothing to learn from")
    held = set(rng.choice(usable, size=min(valid_users, len(usable) // 5), replace=False).tolist())
    valid = [(kept[u][:-1], int(kept[u][-1])) for u in sorted(held)]
    train = [q[:-1] if u in held else q for u, q in enumerate(kept)]
    lengths = np.array([len(q) for q in train])
    ex_user = np.repeat(np.arange(len(train)), np.maximum(lengths - 1, 0))
    ex_pos = np.concatenate([np.arange(1, n) for n in lengths if n > 1]) if (lengths > 1).any() else np.zeros(0)
    unit = np.where(has_text[:, None], vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12), 0.0)
    return _Prepared(s.name, unit.astype(np.float32), ~has_text, train, ex_user, ex_pos.astype(np.int64), valid,
                     len(s.seqs), dropped)


class _Sampler:
    """Draws each step's catalog (∝ pairs^mix) and its pairs (each catalog's pairs in a shuffled order, reshuffled
    when used up); its whole state is a numpy generator and the cursors, kept in the checkpoint."""

    def __init__(self, prepared: list[_Prepared], cfg: BehaviourConfig) -> None:
        self.prepared, self.cfg = prepared, cfg
        sizes = np.array([len(p.ex_user) for p in prepared], dtype=np.float64)
        self.p = sizes**cfg.mix / (sizes**cfg.mix).sum()
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.perm = [self.rng.permutation(len(p.ex_user)) for p in prepared]
        self.cursor = [0] * len(prepared)

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "perm": self.perm, "cursor": self.cursor}

    def restore(self, st: dict[str, Any]) -> None:
        self.rng.bit_generator.state = st["rng"]
        self.perm, self.cursor = st["perm"], list(st["cursor"])

    def draw(self) -> tuple[int, list[np.ndarray], np.ndarray]:
        """``(catalog, histories, targets)`` of one step (item indices of that catalog)."""
        j = int(self.rng.choice(len(self.prepared), p=self.p))
        p, b = self.prepared[j], min(self.cfg.batch_size, len(self.prepared[j].ex_user))
        if self.cursor[j] + b > len(self.perm[j]):
            self.perm[j], self.cursor[j] = self.rng.permutation(len(p.ex_user)), 0
        rows = self.perm[j][self.cursor[j] : self.cursor[j] + b]
        self.cursor[j] += b
        hists, targets = [], np.empty(b, dtype=np.int64)
        pairs = self.rng.random(b) < self.cfg.item_pairs
        for r, e in enumerate(rows):
            q, t = p.seqs[p.ex_user[e]], int(p.ex_pos[e])
            targets[r] = q[t]
            back = min(self.cfg.history, t)
            hists.append(q[[t - int(self.rng.integers(1, back + 1))]] if pairs[r] else q[t - back : t])
        return j, hists, targets


def catalog_loss(table: Any, unranked: np.ndarray, hists: list[np.ndarray], targets: np.ndarray, scale: Any) -> Any:
    """Cross-entropy of each target among its whole catalog (``table``: every item's unit vector); a history's own
    items (but the target) and the items without text are left out of its soft-max."""
    import torch

    prof = torch.stack([table[torch.from_numpy(h)].mean(0) for h in hists])
    prof = torch.nn.functional.normalize(prof, dim=-1)  # (batch, dim)
    logits = prof @ table.T * scale  # (batch, items)
    rows = np.concatenate([np.full(len(h), r) for r, h in enumerate(hists)])
    cols = np.concatenate(hists)
    own = cols != targets[rows]
    logits = logits.index_put((torch.from_numpy(rows[own]), torch.from_numpy(cols[own])), torch.tensor(float("-inf")))
    if unranked.any():
        logits = logits.masked_fill(torch.from_numpy(unranked)[None, :], float("-inf"))
    return torch.nn.functional.cross_entropy(logits, torch.from_numpy(targets))


def heldout_ndcg(vectors: np.ndarray, valid: list[tuple[np.ndarray, int]], history: int = 50,
                 unranked: np.ndarray | None = None) -> float:
    """NDCG@10 of the held-out items: the whole catalog ranked by the cosine with the mean of the user's last
    ``history`` items (history masked, and the ``unranked`` items: those without text; the held-out item loses ties)."""
    if not valid:
        return 0.0
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    gains = []
    for start in range(0, len(valid), 256):
        part = valid[start : start + 256]
        prof = np.stack([unit[h[-history:]].mean(0) for h, _ in part])
        scores = prof @ unit.T  # (users, items)
        for r, (h, t) in enumerate(part):
            s = scores[r]
            target = s[t]
            s[h] = -np.inf
            if unranked is not None:
                s[unranked] = -np.inf
            s[t] = -np.inf  # ranked against every other item (a held-out item that repeats a history item too)
            rank = int((s >= target).sum())
            gains.append(1.0 / np.log2(rank + 2) if rank < 10 else 0.0)
    return float(np.mean(gains))


def calibrated_temperature(head: Head, sampler: _Sampler, prepared: list[_Prepared], batches: int = 20) -> float:
    """The temperature of a grid at which the encoder as it came has the lowest loss on ``batches`` drawn batches
    (drawn from a copy of the sampler: training then sees the batches it would have seen)."""
    import copy

    import torch

    probe = copy.deepcopy(sampler)
    losses = {t: 0.0 for t in (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3)}
    with torch.no_grad():
        for _ in range(batches):
            j, hists, targets = probe.draw()
            table = head.table(prepared[j].vectors)
            for t in losses:
                losses[t] += float(catalog_loss(table, prepared[j].unranked, hists, targets, 1.0 / t))
    return min(losses, key=lambda t: losses[t])


def train_encoder(sources: list[BehaviourSource], cfg: BehaviourConfig, out: str | Path, *, cache_dir: str = "",
                  resume: bool = False, progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Train a behaviour head on ``cfg.encoder`` with ``sources`` and write the encoder with it to ``out`` (a
    sentence-transformers folder); returns what ``behaviour.json`` records."""
    started = time.perf_counter()
    if not sources:
        raise ConfigError("pretraining an encoder needs at least one source dataset")
    names = [s.name for s in sources]
    if len(set(names)) < len(names):
        raise ConfigError(f"a source is given twice: {', '.join(names)}")
    encoder = TextEncoder(EncoderConfig(model=cfg.encoder, cache_dir=cache_dir, threads=cfg.threads))
    rng = np.random.default_rng(cfg.seed)
    prepared = []
    for s in sources:
        prepared.append(prepare_source(s, encoder.encode(s.texts, progress=_labelled(progress, f"embed {s.name}")),
                                       cfg.valid_users, rng))
    folder = Path(out)
    setup = time.perf_counter() - started
    head, meta = fit_head(prepared, cfg, folder / "training", resume=resume, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    save_with_head(cfg.encoder, head, folder)
    meta = {"format": FORMAT, "config": asdict(cfg), **meta}
    meta["seconds"] = {"setup": round(setup, 1), **meta["seconds"], "total": round(time.perf_counter() - started, 1)}
    meta["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def tune_head(name: str, texts: list[str], vectors: np.ndarray, seqs: list[np.ndarray], cfg: BehaviourConfig,
              progress: Callable[[str, int, int], None] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A behaviour head for one catalog, from its own training sequences (in-domain adaptation inside a model's
    fit): ``(head, summary)`` with ``head`` the ``(dim + 1, dim)`` array ``[weight; bias]``, the identity when no
    round beat the encoder as it came on the held-out last items."""
    prepared = [
        prepare_source(BehaviourSource(name, texts, seqs), vectors, cfg.valid_users, np.random.default_rng(cfg.seed))
    ]
    head, meta = fit_head(prepared, cfg, None, progress=progress)
    return head.array(), meta


def fit_head(prepared: list[_Prepared], cfg: BehaviourConfig, folder: Path | None, *, resume: bool = False,
             progress: Callable[[str, int, int], None] | None = None) -> tuple[Head, dict[str, Any]]:
    """The training loop: rounds of ``round_steps`` steps, each followed by a validation; the best round's head."""
    import torch

    from anyrec.training import TrainingLoop

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")

    def say(text: str) -> None:
        log.info(text)
        if progress:
            progress(text, 0, 0)  # a notice (see anyrec.cli.progress)

    say("behaviour head: " + ", ".join(f"{p.name} {len(p.ex_user):,} pairs" for p in prepared))
    dim = prepared[0].vectors.shape[1]
    if any(p.vectors.shape[1] != dim for p in prepared):
        raise ConfigError("every source must be encoded by one encoder")
    head = Head(dim, device)
    sampler = _Sampler(prepared, cfg)
    tau0 = cfg.temperature or calibrated_temperature(head, sampler, prepared)
    log_scale = torch.nn.Parameter(
        torch.tensor(float(-np.log(tau0)), device=device), requires_grad=cfg.temperature is None
    )
    opt = torch.optim.Adam([head.weight, head.bias] + ([log_scale] if cfg.temperature is None else []), lr=cfg.lr)
    say(
        f"behaviour head: temperature {tau0:.3g} "
        f"({'given' if cfg.temperature else 'calibrated on the first batches, then learnt'})"
    )
    loop = TrainingLoop(cfg.patience, cfg.max_minutes, 1e-5, folder, unit="round")
    steps = np.zeros(len(prepared), dtype=np.int64)

    def validate() -> tuple[float, dict[str, float]]:
        per = {p.name: round(heldout_ndcg(head.numpy(p.vectors), p.valid, unranked=p.unranked), 6) for p in prepared}
        return float(np.mean(list(per.values()))), per

    def state() -> dict[str, Any]:
        return {
            "weight": head.weight.detach().clone(),
            "bias": head.bias.detach().clone(),
            "log_scale": log_scale.detach().clone(),
        }

    def load(st: dict[str, Any]) -> None:
        with torch.no_grad():
            head.weight.copy_(st["weight"])
            head.bias.copy_(st["bias"])
            log_scale.copy_(st["log_scale"])

    def checkpoint(rnd: int) -> None:
        loop.save(rnd, {"head": state(), "opt": opt.state_dict(), "sampler": sampler.state(), "steps": steps.copy()})

    def restore(ck: dict[str, Any]) -> None:
        load(ck["head"])
        opt.load_state_dict(ck["opt"])
        sampler.restore(ck["sampler"])
        steps[:] = ck["steps"]

    if not (resume and loop.resume(restore, map_location=device)):
        score, per = validate()
        loop.best, loop.best_state = score, state()
        loop.history.append({"round": 0, "steps": 0, "loss": None, "seconds": round(loop.seconds(), 2),
                             "valid_ndcg@10": round(score, 6), "valid_by_source": per, "encoder": "as it came"})
        say(f"behaviour head round 0 (the encoder as it came): held-out ndcg@10 {score:.4f} "
            + ", ".join(f"{k} {v:.4f}" for k, v in per.items()))
        checkpoint(0)
    for rnd in range(max(loop.next_epoch, 1), cfg.rounds + 1):
        if loop.out_of_patience():
            break
        total = 0.0
        for b in range(1, cfg.round_steps + 1):
            j, hists, targets = sampler.draw()
            p = prepared[j]
            loss = catalog_loss(head.table(p.vectors), p.unranked, hists, targets, log_scale.exp())
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps[j] += 1
            total += float(loss.detach())
            loop.report(progress, "encoder", rnd - 1, cfg.rounds, b, cfg.round_steps, total / b)
        score, per = validate()
        entry = {"round": rnd, "steps": int(steps.sum()), "loss": round(total / cfg.round_steps, 5),
                 "temperature": round(float(1.0 / log_scale.detach().exp()), 4), "seconds": round(loop.seconds(), 2),
                 "valid_ndcg@10": round(score, 6), "valid_by_source": per}
        loop.record(entry, score, state)
        say(f"behaviour head round {rnd}: {int(steps.sum()):,} steps, loss {entry['loss']:.4f}, held-out ndcg@10 "
            f"{score:.4f} (best {loop.best:.4f}) " + ", ".join(f"{k} {v:.4f}" for k, v in per.items()))
        checkpoint(rnd)
        if loop.should_stop():
            break
    loop.finish(progress, "encoder")
    load(loop.best_state)
    best = max(loop.history, key=lambda e: e["valid_ndcg@10"])
    return head, {
        "device": device,
        "trained": "a behaviour head (Dense, dim × dim + bias)",
        "temperature": {"start": round(float(tau0), 4), "kept": round(float(1.0 / log_scale.detach().exp()), 4)},
        "steps": int(steps.sum()),
        "best_round": best["round"],
        "kept": "the encoder as it came (no round beat it)" if best["round"] == 0 else f"round {best['round']}",
        "valid_ndcg@10": {"as it came": loop.history[0]["valid_ndcg@10"], "best": best["valid_ndcg@10"]},
        "sources": [
            {
                "name": p.name,
                "users": p.users,
                "items": len(p.vectors),
                "pairs": len(p.ex_user),
                "validation_users": len(p.valid),
                "events_on_items_without_text": p.dropped,
                "steps": int(steps[j]),
                "share_of_steps": round(float(steps[j] / max(1, steps.sum())), 4),
            }
            for j, p in enumerate(prepared)
        ],
        "seconds": {"training": round(loop.seconds(), 1)},
        "history": loop.history,
    }


def _labelled(progress: Callable[[str, int, int], None] | None, label: str) -> Callable[[int, int], None] | None:
    """``progress`` reporting ``(done, total)`` under ``label``."""
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(label, done, total)
