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
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from anyrec.data.dataset import Catalog, Dataset
from anyrec.errors import ConfigError
from anyrec.lm.encoder import resolve_encoder
from anyrec.rank.cross_config import ClickClassifierConfig
from anyrec.rank.evidence import Evidence, EvidenceRanker, parse_features
from anyrec.training import TrainingLoop

log = logging.getLogger(__name__)


class ClickClassifier:
    """``score(histories, candidates) -> (users, n)`` yes−no logits; ``fit`` / ``save`` / ``load``."""

    def __init__(self, catalog: Catalog, config: ClickClassifierConfig | None = None) -> None:
        self.catalog = catalog
        self.config = config or ClickClassifierConfig()
        self._tok: Any = None
        self._model: Any = None
        self.report_: dict[str, Any] = {}
        names = parse_features(self.config.evidence)
        self.prior_ = (
            EvidenceRanker(Evidence(names, recent=self.config.history), np.zeros(len(names))) if names else None
        )

    def set_evidence(self, ds: Dataset) -> ClickClassifier:
        """Fit the collaborative features on ``ds`` (the interactions the stage was fitted on); a no-op
        without ``evidence``."""
        if self.prior_ is not None:
            self.prior_.evidence.fit(ds)
        return self

    # ---- model -------------------------------------------------------------------------
    def _load(self, source: str | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        # weight-loading bars on stderr are noise beside ours (and break --json in one stream)
        hf_logging.disable_progress_bar()

        c = self.config
        if c.threads:
            torch.set_num_threads(c.threads)
        name = source or resolve_encoder(c.encoder)
        try:
            self._tok = AutoTokenizer.from_pretrained(name)
            self._model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=2)
        except OSError as exc:
            raise ConfigError(f"cannot load encoder {name!r} for the click classifier: {exc}") from exc
        device = (
            "cuda" if c.device == "auto" and torch.cuda.is_available() else ("cpu" if c.device == "auto" else c.device)
        )
        self._model.to(device)

    @property
    def device(self) -> Any:
        return self._model.device

    def left(self, history: Sequence[int] | np.ndarray) -> str:
        recent = list(history)[-self.config.history:][::-1]  # newest first: truncation drops the oldest
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
        text = out.reshape(candidates.shape)
        return text + self.prior_.score(histories, candidates) if self.prior_ is not None else text

    # ---- training ----------------------------------------------------------------------
    def pairs(
        self, seqs: Sequence[np.ndarray], negatives: Callable[[int, np.ndarray], np.ndarray]
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
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
                pick: np.ndarray = (
                    negs[(t * c.negatives + np.arange(c.negatives)) % max(1, len(negs))] if len(negs) else negs
                )
                for n in pick:
                    lefts.append(left)
                    items.append(int(n))
                    labels.append(0)
        return lefts, np.array(items, dtype=np.int64), np.array(labels, dtype=np.int64)

    def fit(self, lefts: list[str], items: np.ndarray, labels: np.ndarray,
            validate: Callable[[ClickClassifier], tuple[float, dict[str, Any]]] | None = None,
            out_dir: str | Path | None = None, progress: Callable[[int, int], None] | None = None) -> ClickClassifier:
        """Fine-tune on pairs (two-class cross-entropy); after each epoch ``validate(self) -> (score, detail)``
        (higher is better) keeps the best weights. With ``out_dir`` the best model is saved there and every
        epoch ends with a checkpoint (``checkpoint.pt``), from which ``resume=True`` continues."""
        import torch

        if self.prior_ is not None:
            raise ConfigError("ranker.evidence needs listwise training (ranker.holdout > 0)")
        self._fresh()

        def loss(idx: np.ndarray) -> Any:
            batch = self._batch([lefts[i] for i in idx], items[idx])
            return self._model(**batch, labels=torch.as_tensor(labels[idx], device=self.device)).loss

        self._train(len(labels), self.config.batch_size, loss, validate, out_dir, progress)
        self.report_.update(pairs=int(len(labels)), positives=int(labels.sum()))
        return self

    def fit_lists(self, lefts: list[str], candidates: np.ndarray, answers: np.ndarray, offsets: np.ndarray,
                  validate: Callable[[ClickClassifier], tuple[float, dict[str, Any]]] | None = None,
                  out_dir: str | Path | None = None, progress: Callable[[int, int], None] | None = None,
                  features: np.ndarray | None = None, beta0: float = 1.0) -> ClickClassifier:
        """Fine-tune listwise: for list ``r`` (history text ``lefts[r]``, items ``candidates[r]``), softmax
        cross-entropy of ``logit(yes − no) + beta · offsets[r]`` at the clicked position ``answers[r]``.

        ``offsets`` are the retriever's standardised scores of the same list, so the classifier learns
        what the retriever's order misses rather than what it already knows; ``beta`` is learned with it.
        Each step takes ``batch_size // list length`` lists (at least one); ``-1`` pads short lists.
        With ``evidence``, ``features`` (lists, width, F; standardised within each list) add
        ``features @ w``, ``w`` learned too and starting from the prior's weights (``beta`` from ``beta0``)."""
        import torch

        self._fresh()
        n, width = candidates.shape
        beta = torch.nn.Parameter(torch.full((), float(beta0), device=self.device))
        extra: dict[str, Any] = {"beta": beta}
        if self.prior_ is not None:
            if features is None or features.shape[:2] != candidates.shape:
                raise ConfigError("ranker.evidence: fit_lists needs the lists' features (lists, width, F)")
            extra["w"] = torch.nn.Parameter(
                torch.as_tensor(self.prior_.weights, dtype=torch.float32, device=self.device)
            )
            feats = torch.as_tensor(features, dtype=torch.float32, device=self.device)
        valid = candidates >= 0
        safe = np.where(valid, candidates, 0)
        off = torch.as_tensor(np.where(valid, offsets, 0.0), dtype=torch.float32, device=self.device)
        pad = torch.as_tensor(~valid, device=self.device)
        ans = torch.as_tensor(answers, dtype=torch.long, device=self.device)

        def loss(idx: np.ndarray) -> Any:
            keep = valid[idx].reshape(-1)
            flat_l = [lefts[i] for i in idx for _ in range(width)]
            logits = self._model(
                **self._batch([x for x, k in zip(flat_l, keep) if k], safe[idx].reshape(-1)[keep])
            ).logits
            ranked = torch.zeros(len(keep), device=self.device, dtype=logits.dtype)
            ranked[torch.as_tensor(keep, device=self.device)] = logits[:, 1] - logits[:, 0]
            scores = ranked.reshape(len(idx), width) + beta * off[idx]  # (lists, width)
            if "w" in extra:
                scores = scores + feats[idx] @ extra["w"]
            return torch.nn.functional.cross_entropy(scores.masked_fill(pad[idx], float("-inf")), ans[idx])

        self._train(n, max(1, self.config.batch_size // width), loss, validate, out_dir, progress, extra=extra)
        self.report_.update(lists=int(n), pairs=int(n * width), positives=int(n), beta=round(float(beta.detach()), 4))
        return self

    def _fresh(self) -> None:
        """The pretrained encoder with a new head, seeded (the head's start depends on the seed)."""
        import torch

        torch.manual_seed(self.config.seed)
        self._load()

    def _train(self, n: int, per_step: int, loss_of: Callable[[np.ndarray], Any],
               validate: Callable[[ClickClassifier], tuple[float, dict[str, Any]]] | None,
               out_dir: str | Path | None, progress: Callable[[int, int], None] | None,
               extra: dict[str, Any] | None = None) -> None:
        """The optimiser loop shared by both losses: ``n`` training units, ``per_step`` per step;
        ``extra`` parameters (name → tensor) train alongside the encoder and are checkpointed."""
        import torch

        c = self.config
        extra = extra or {}
        groups: list[dict[str, Any]] = [{"params": list(self._model.parameters())}]
        if extra:  # scalars such as the offset weight need a larger step than the encoder's weights
            groups.append({"params": list(extra.values()), "lr": 1e-2, "weight_decay": 0.0})
        opt = torch.optim.AdamW(groups, lr=c.lr, weight_decay=0.01)
        steps = c.epochs * -(-n // per_step)
        warm = max(1, int(c.warmup * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
        )
        rng = np.random.default_rng(c.seed)
        loop = TrainingLoop(c.patience, c.max_minutes, 0.0, out_dir, start_best=-np.inf)
        done = 0

        def restore(state: dict[str, Any]) -> None:
            nonlocal done
            self._model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            rng.bit_generator.state = state["rng"]
            with torch.no_grad():
                for k, v in extra.items():
                    v.copy_(state["extra"][k])
            done = state["done"]

        if c.resume and out_dir is not None:
            loop.resume(restore, map_location=self.device)

        def best_weights() -> tuple[dict[str, Any], dict[str, Any]]:
            return ({k: v.detach().clone() for k, v in self._model.state_dict().items()},
                    {k: v.detach().clone() for k, v in extra.items()})

        for epoch in range(loop.next_epoch, c.epochs):
            if loop.out_of_patience():
                break
            self._model.train()
            perm = rng.permutation(n)
            losses = []
            for s in range(0, n, per_step):
                loss = loss_of(perm[s : s + per_step])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                done += 1
                if progress is not None:
                    progress(done, steps)
                if loop.out_of_time():
                    break
            self._sync(extra)
            score, detail = validate(self) if validate is not None else (-float(np.mean(losses)), {})
            entry = {
                "epoch": epoch + 1,
                "steps": done,
                "units": min(n, len(losses) * per_step),
                "loss": round(float(np.mean(losses)), 4),
                "valid": round(float(score), 5),
                "seconds": round(loop.seconds(), 1),
                "detail": detail,
                **{k: _rounded(v) for k, v in extra.items()},
            }
            log.info("click classifier epoch %d: loss %.4f, validation %.5f", epoch + 1, entry["loss"], score)
            if loop.record(entry, score, best_weights) and out_dir is not None:
                self.save(out_dir)
            loop.save(
                epoch,
                {
                    "model": self._model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "rng": rng.bit_generator.state,
                    "done": done,
                    "extra": {k: v.detach() for k, v in extra.items()},
                },
            )
            if loop.out_of_time():
                break
        if loop.best_state is not None:
            best_model, best_extra = loop.best_state
            self._model.load_state_dict(best_model)
            with torch.no_grad():
                for k, v in best_extra.items():
                    extra[k].copy_(v)
        self._sync(extra)
        self.report_ = {"epochs": loop.history, "best_valid": float(loop.best), "seconds": round(loop.seconds(), 1)}

    def _sync(self, extra: dict[str, Any]) -> None:
        """The evidence weights being trained become the ones ``score`` uses."""
        if self.prior_ is not None and "w" in extra:
            self.prior_.weights = extra["w"].detach().cpu().numpy().astype(np.float64)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        self._model.save_pretrained(path)
        self._tok.save_pretrained(path)
        (path / "anyrec-ranker.json").write_text(
            json.dumps(
                {
                    "config": asdict(self.config),
                    "report": self.report_,
                    **({"evidence_weights": self.prior_.weights.tolist()} if self.prior_ is not None else {}),
                },
                indent=2,
            )
        )
        return path

    @classmethod
    def load(cls, folder: str | Path, catalog: Catalog) -> ClickClassifier:
        path = Path(folder)
        meta = path / "anyrec-ranker.json"
        if not meta.exists():
            raise ConfigError(
                f"{path} is not a ranker folder (no anyrec-ranker.json); write one with `anyrec fit-ranker`"
            )
        info = json.loads(meta.read_text())
        known = set(ClickClassifierConfig.__dataclass_fields__)  # a folder may hold options since removed
        self = cls(catalog, ClickClassifierConfig(**{k: v for k, v in info["config"].items() if k in known}))
        self.report_ = info.get("report", {})
        if self.prior_ is not None:
            self.prior_.weights = np.asarray(info["evidence_weights"], dtype=np.float64)
        self._load(str(path))
        return self


def _rounded(v: Any) -> float | list[float]:
    x = v.detach().cpu().numpy()
    return round(float(x), 4) if x.ndim == 0 else [round(float(e), 4) for e in x]
