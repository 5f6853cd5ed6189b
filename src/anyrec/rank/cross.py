"""The click classifier: a pretrained encoder fine-tuned to answer "will this user pick this item?".

Input pairs are ``"recent history titles" [SEP] "candidate text"``; the head has two classes
(no / yes) and the score is the yes−no logit. Training pairs come from the training
interactions: for a user's position t, the history before t and the item at t (yes), and items
the retriever ranks high for that user but the user never touched (no: hard negatives) or,
where the data has impressions, items shown and not clicked. Validation (the ranking stage's
NDCG on the validation split) stops training early; checkpoints make it resumable.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.data.dataset import Catalog
from anyrec.errors import ConfigError
from anyrec.lm.encoder import resolve_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClickClassifierConfig:
    """Attributes:
        encoder: a Hugging Face encoder name or folder (``default`` = the offline MiniLM).
        history: most recent history items in the left text.
        history_words: 0 = their titles; n = the first n words of each one's item text (title, genres, …).
        max_length: tokens per pair.
        negatives: hard negatives per positive.
        positions: training positions per user (the latest ones of the training history).
        epochs, lr, batch_size, warmup: the optimiser; ``patience`` epochs without a better validation stop it.
        max_minutes: time budget for training (0 = none).
        threads: torch CPU threads (0 = torch's default); device: ``cpu``, ``cuda`` or ``auto``.
        resume: continue from the checkpoint in the output folder (same pairs, same config).
    """

    encoder: str = "default"
    history: int = 5
    history_words: int = 0
    max_length: int = 128
    negatives: int = 4
    positions: int = 3
    epochs: int = 3
    lr: float = 3e-5
    batch_size: int = 32
    warmup: float = 0.1
    patience: int = 1
    max_minutes: float = 0.0
    threads: int = 0
    device: str = "auto"
    seed: int = 0
    resume: bool = False


class ClickClassifier:
    """``score(histories, candidates) -> (users, n)`` yes−no logits; ``fit`` / ``save`` / ``load``."""

    def __init__(self, catalog: Catalog, config: ClickClassifierConfig | None = None) -> None:
        self.catalog = catalog
        self.config = config or ClickClassifierConfig()
        self._tok: Any = None
        self._model: Any = None
        self.report_: dict[str, Any] = {}

    # ---- model -------------------------------------------------------------------------
    def _load(self, source: str | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # weight-loading bars on stderr are noise beside ours (and break --json in one stream)

        c = self.config
        if c.threads:
            torch.set_num_threads(c.threads)
        name = source or resolve_encoder(c.encoder)
        try:
            self._tok = AutoTokenizer.from_pretrained(name)
            self._model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=2)
        except OSError as exc:
            raise ConfigError(f"cannot load encoder {name!r} for the click classifier: {exc}") from exc
        device = "cuda" if c.device == "auto" and torch.cuda.is_available() else ("cpu" if c.device == "auto" else c.device)
        self._model.to(device)

    @property
    def device(self) -> Any:
        return self._model.device

    def left(self, history: Sequence[int] | np.ndarray) -> str:
        recent = list(history)[-self.config.history:][::-1]  # newest first: truncation drops the oldest
        n = self.config.history_words
        if n:
            return " | ".join(" ".join(self.catalog.text(int(h)).split()[:n]) for h in recent) or "(no history)"
        return " | ".join(self.catalog.title(int(h)) for h in recent) or "(no history)"

    def _batch(self, lefts: Sequence[str], items: np.ndarray) -> Any:
        rights = [self.catalog.text(int(i)) for i in items]
        return self._tok(list(lefts), rights, truncation="longest_first", max_length=self.config.max_length,
                         padding=True, return_tensors="pt").to(self.device)

    def score(self, histories: Sequence[np.ndarray], candidates: np.ndarray, batch_size: int = 128,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """yes−no logits for every (user, candidate) pair ``(users, n)``."""
        import torch

        if self._model is None:
            raise ConfigError("the click classifier is not fitted or loaded")
        self._model.eval()
        lefts = [self.left(h) for h in histories]
        flat_l = [lefts[u] for u in range(len(candidates)) for _ in range(candidates.shape[1])]
        flat_i = candidates.reshape(-1)
        out = np.zeros(len(flat_i), dtype=np.float64)
        with torch.inference_mode():
            for s in range(0, len(flat_i), batch_size):
                logits = self._model(**self._batch(flat_l[s : s + batch_size], flat_i[s : s + batch_size])).logits
                out[s : s + batch_size] = (logits[:, 1] - logits[:, 0]).float().cpu().numpy()
                if progress is not None:
                    progress(len(logits))
        return out.reshape(candidates.shape)

    # ---- training ----------------------------------------------------------------------
    def pairs(self, seqs: Sequence[np.ndarray], negatives: Callable[[int, np.ndarray], np.ndarray]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Training pairs: (left text, item, label) for the latest ``positions`` positions of each sequence;
        ``negatives(user, history)`` gives the user's hard negatives."""
        c = self.config
        lefts: list[str] = []
        items: list[int] = []
        labels: list[int] = []
        for u, seq in enumerate(seqs):
            if len(seq) < 2:
                continue
            negs = negatives(u, seq)
            for t in range(max(1, len(seq) - c.positions), len(seq)):
                left = self.left(seq[:t])
                lefts.append(left)
                items.append(int(seq[t]))
                labels.append(1)
                pick: np.ndarray = negs[(t * c.negatives + np.arange(c.negatives)) % max(1, len(negs))] if len(negs) else negs
                for n in pick:
                    lefts.append(left)
                    items.append(int(n))
                    labels.append(0)
        return lefts, np.array(items, dtype=np.int64), np.array(labels, dtype=np.int64)

    def fit(self, lefts: list[str], items: np.ndarray, labels: np.ndarray,
            validate: Callable[[ClickClassifier], tuple[float, dict[str, Any]]] | None = None,
            out_dir: str | Path | None = None, progress: Callable[[int, int], None] | None = None) -> ClickClassifier:
        """Fine-tune on pairs; after each epoch ``validate(self) -> (score, detail)`` (higher is better)
        keeps the best weights. With ``out_dir`` the best model is saved there and every epoch ends
        with a checkpoint (``checkpoint.pt``), from which ``resume=True`` continues."""
        import torch

        c = self.config
        torch.manual_seed(c.seed)
        self._load()
        opt = torch.optim.AdamW(self._model.parameters(), lr=c.lr, weight_decay=0.01)
        steps = c.epochs * -(-len(labels) // c.batch_size)
        warm = max(1, int(c.warmup * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm)))
        rng = np.random.default_rng(c.seed)
        best, best_state, bad, done, start = -np.inf, None, 0, 0, 0
        history: list[dict[str, Any]] = []
        ckpt = Path(out_dir) / "checkpoint.pt" if out_dir is not None else None
        if c.resume and ckpt is not None and ckpt.exists():
            state = torch.load(ckpt, map_location=self.device, weights_only=False)
            self._model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            rng.bit_generator.state = state["rng"]
            best, best_state, bad, done, start, history = (state["best"], state["best_state"], state["bad"], state["done"],
                                                           state["epoch"], state["history"])
            log.info("click classifier: resumed after epoch %d (best validation %.5f)", start, best)
        t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
        for epoch in range(start, c.epochs):
            if bad >= c.patience:
                break
            self._model.train()
            perm = rng.permutation(len(labels))
            losses = []
            for s in range(0, len(perm), c.batch_size):
                idx = perm[s : s + c.batch_size]
                batch = self._batch([lefts[i] for i in idx], items[idx])
                loss = self._model(**batch, labels=torch.as_tensor(labels[idx], device=self.device)).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                done += 1
                if progress is not None:
                    progress(done, steps)
                if c.max_minutes and time.perf_counter() - t0 > 60 * c.max_minutes:
                    break
            score, detail = validate(self) if validate is not None else (-float(np.mean(losses)), {})
            history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), "valid": round(float(score), 5),
                            "seconds": round(time.perf_counter() - t0, 1), "detail": detail})
            log.info("click classifier epoch %d: loss %.4f, validation %.5f", epoch + 1, history[-1]["loss"], score)
            if score > best:
                best, bad = score, 0
                best_state = {k: v.detach().clone() for k, v in self._model.state_dict().items()}
                if out_dir is not None:
                    self.save(out_dir)
            else:
                bad += 1
            if ckpt is not None:
                torch.save({"model": self._model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "rng": rng.bit_generator.state, "best": best, "best_state": best_state, "bad": bad, "done": done,
                            "epoch": epoch + 1, "history": history}, ckpt)
            if c.max_minutes and time.perf_counter() - t0 > 60 * c.max_minutes:
                break
        if best_state is not None:
            self._model.load_state_dict(best_state)
        self.report_ = {"pairs": int(len(labels)), "positives": int(labels.sum()), "epochs": history, "best_valid": float(best),
                        "seconds": round(time.perf_counter() - t0, 1)}
        return self

    def save(self, folder: str | Path) -> Path:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        self._model.save_pretrained(path)
        self._tok.save_pretrained(path)
        (path / "anyrec-ranker.json").write_text(json.dumps({"config": asdict(self.config), "report": self.report_}, indent=2))
        return path

    @classmethod
    def load(cls, folder: str | Path, catalog: Catalog) -> ClickClassifier:
        path = Path(folder)
        meta = path / "anyrec-ranker.json"
        if not meta.exists():
            raise ConfigError(f"{path} is not a ranker folder (no anyrec-ranker.json); write one with `anyrec fit-ranker`")
        info = json.loads(meta.read_text())
        self = cls(catalog, ClickClassifierConfig(**info["config"]))
        self.report_ = info.get("report", {})
        self._load(str(path))
        return self
