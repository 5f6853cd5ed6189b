"""Text-based sequential recommender: a causal transformer over item-text representations.

Item representation = an adaptor over the frozen pretrained text vector (learned whitening and
a mixture of linear experts, as in UniSRec), plus an item-id embedding for items seen in
training. Items never seen in training have no id embedding and are scored from their text
alone, so the model ranks new items. The next item is scored against every item's
representation with a full softmax (or sampled softmax for large catalogs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.lm.encoder import TextEncoder, encode_catalog, shared_encoder
from anyrec.models.base import Recommender
from anyrec.models.feedback import kin_push
from anyrec.models.sequential.config import SASRecConfig, SequentialConfig, check_choices, sized_for
from anyrec.models.sequential.network import build_network, item_rows, query_side, torch_module
from anyrec.models.sequential.pretrain import load_weights, read_pretrained, with_architecture
from anyrec.models.sequential.retrieval import IndexSide
from anyrec.models.sequential.textterm import TextTerm
from anyrec.models.sequential.training import StepInputs, held_out_gains, resume, run_epochs, snapshot, windows
from anyrec.models.trainer import announce_sizing
from anyrec.models.whitening import fuse_rows, load_pictures, with_picture_side
from anyrec.training import TrainingLoop

log = logging.getLogger(__name__)


class Sequential(TextTerm, IndexSide, Recommender):
    """Fine-tuned transformer over the user's recent items; items are text (+ id) representations."""

    name = "sequential"
    Config = SequentialConfig
    trains_with_validation: ClassVar[bool] = True
    data_parallel: ClassVar[bool] = True  # a Ray runner fits it with Ray Train (see anyrec.cluster)
    # Score-time options chosen on validation after training (see eval.search.tune_on_validation).
    tuning_grid: ClassVar[dict[str, list[Any]]] = {"text_blend": [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0],
                                                   "half_life": [0.0, 1.0, 3.0, 10.0], "kernel": [0.0, 0.05, 0.1, 0.2],
                                                   "popularity": [0.0, 0.02, 0.05, 0.1, 0.2]}
    # Training-time options searched (coordinate-wise, one fit per value, chosen by validation NDCG@10)
    # when an experiment asks for it; the id-only SASRec below gets the very same grid and budget.
    training_grid: ClassVar[dict[str, list[Any]]] = {
        "dropout": [0.1, 0.3, 0.5],
        "lr": [1e-3, 3e-3],
        "hidden": [64, 128],
    }

    def __init__(self, config: Any = None, *, item_vectors: np.ndarray | None = None, **kw: Any) -> None:
        super().__init__(config, **kw)
        self._given_vectors = item_vectors

    # ---- data -------------------------------------------------------------------
    def _text(self, ds: Dataset) -> np.ndarray:
        if not self.config.use_text:
            return np.zeros((ds.n_items, 1), dtype=np.float32)
        c = self.config
        text = encode_catalog(ds.catalog.texts(), encoder=c.encoder, threads=c.threads,
                              given=self._given_vectors, progress=self.progress)
        self.image_vectors_: np.ndarray | None = None
        self.raw_text_: np.ndarray | None = None
        if not c.image_encoder:
            return text
        if c.init or c.finetune_layers > 0:
            raise ConfigError(
                f"{self.name}.image_encoder: pictures are fused into the text vectors, which a pretrained "
                "network (init) or a fine-tuned encoder (finetune_layers) does not read"
            )
        self.raw_text_ = text
        self.image_vectors_ = load_pictures(ds, c.image_encoder, c.encoder.cache_dir, self.progress, self.report_)
        unit = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
        return fuse_rows(unit, self.image_vectors_, self._picture_weight())

    def _picture_weight(self) -> float:
        return (
            min(max(float(self.config.image_weight), 0.0), 1.0)
            if getattr(self, "image_vectors_", None) is not None
            else 0.0
        )

    @staticmethod
    def _sequences(ds: Dataset) -> list[np.ndarray]:
        """Each user's items in time order (ties in file order), as item index + 1 (0 pads)."""
        return [s + 1 for s in ds.interactions.sequences(ds.n_users)]

    # ---- fitting ------------------------------------------------------------------
    def _fit(self, ds: Dataset) -> None:
        """Early-stops on ``fit``'s ``validate(model) -> NDCG@10``; without one, on each user's last training item."""
        self._train(ds, self._validate)

    def search_minutes(self) -> float:
        return float(self.config.search_minutes or 0)

    def _train(self, ds: Dataset, validate: Callable[[Recommender], float] | None) -> None:
        torch = torch_module()
        start = read_pretrained(self.config.init) if self.config.init else None
        if start is not None:  # the pretrained settings shape the weights (and the encoder the vectors they read)
            self.config = with_architecture(self.config, start[0])
        cfg = self.config
        check_choices(cfg)
        torch.manual_seed(cfg.seed)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        text = self._text(ds)
        self.text_vectors_ = text
        self.item_seen_ = (np.bincount(ds.interactions.item, minlength=ds.n_items) > 0).astype(np.float32)
        self._fit_priors(ds.interactions, ds.n_items)
        seqs = self._sequences(ds)
        self.seqs_ = seqs
        cut = windows(seqs, cfg.max_len)
        hold: np.ndarray | None = None
        hold_users: np.ndarray | None = None
        if validate is None and len(cut):
            # No validation split given: hold each user's last training item out for early stopping.
            hold = np.array([s[-1] for s in seqs if len(s) > 2])
            hold_users = np.array([u for u, s in enumerate(seqs) if len(s) > 2])
            cut = windows([s[:-1] if len(s) > 2 else s for s in seqs], cfg.max_len)
        cfg = self._size_for_data(ds.n_items, cut)
        self.pretrained_vectors_: np.ndarray | None = None
        tuner = self._encoder_tuner(ds, device) if cfg.finetune_layers > 0 and cfg.use_text else None
        if tuner is not None:
            self.pretrained_vectors_ = text
            text = tuner.all_vectors().cpu().numpy()
            self.text_vectors_ = text
        self.text_center_ = text.mean(0).astype(np.float32) if cfg.center_text and cfg.use_text and tuner is None \
            else np.zeros(text.shape[1], dtype=np.float32)
        text = text - self.text_center_  # what the network reads (the text terms keep the vectors as they are)
        self.net_ = build_network(ds.n_items, text.shape[1], cfg, text if cfg.use_text and start is None else None).to(
            device
        )
        self.new_weights_ = load_weights(self.net_, start[1]) if start is not None else []
        self._device = device
        groups: list[dict[str, Any]] = [{"params": list(self.net_.parameters()), "lr": cfg.lr}]
        if tuner is not None:
            groups.append({"params": list(tuner.parameters()), "lr": cfg.finetune_lr})
        opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        tables = (torch.from_numpy(text).to(device), torch.from_numpy(self.item_seen_).to(device))
        counts = torch.zeros(ds.n_items + 1, dtype=torch.long, device=device)
        gen = torch.Generator().manual_seed(cfg.seed)
        step = StepInputs(self.net_, *tables, tuner, gen, counts, ds.n_items, device, cfg)
        data = torch.from_numpy(cut.astype(np.int64))
        # Data-parallel training (set by anyrec.cluster's Ray Train loop): one writer of the log and checkpoint.
        rank, world = self.worker
        loop = TrainingLoop(
            cfg.patience, cfg.max_minutes or 0.0, 1e-6, cfg.log_dir or None, world=world, writes=rank == 0
        )
        if cfg.resume and resume(loop, step, opt) and tuner is not None:
            self.text_vectors_ = step.text.cpu().numpy()

        def evaluate() -> float:
            if tuner is not None:
                self.text_vectors_ = step.text.cpu().numpy()
            self._cache_table()
            return validate(self) if validate is not None else self._holdout_ndcg(hold, hold_users, seqs)

        if start is not None and loop.next_epoch == 0:  # the pretrained weights are the figure to beat (epoch -1)
            self.net_.eval()
            score = evaluate()
            entry = {"epoch": -1, "loss": None, "seconds": round(loop.seconds(), 2), "valid_ndcg@10": round(score, 6)}
            loop.record({**entry, "pretrained": cfg.init}, score, lambda: snapshot(step))
        params = [p for g in groups for p in g["params"]]
        run_epochs(loop, step, data, opt, params, evaluate, self.name, self.progress, rank, world)
        best = loop.best_state
        if best is not None and tuner is not None:
            self.net_.load_state_dict(best["net"])
            tuner.load_state_dict(best["tuner"])
            self.text_vectors_ = best["text"]
            if cfg.log_dir:
                tuner.save(str(Path(cfg.log_dir) / "encoder"))
                log.info("tuned encoder saved to %s", Path(cfg.log_dir) / "encoder")
        elif best is not None:
            self.net_.load_state_dict(best)
        self.net_.eval()
        self.report_.epochs = loop.new_entries()
        self.report_.best_valid_ndcg = loop.best
        self._cache_table()

    def _size_for_data(self, n_items: int, cut: np.ndarray) -> SequentialConfig:
        """Set the options left to the data (:func:`sized_for`) and say what was chosen and why."""
        self.config, self.report_.sized = sized_for(self.config, n_items, [int(n) for n in (cut[:, :-1] != 0).sum(1)])
        announce_sizing(self.name, self.report_.sized, self.progress)
        return self.config

    def _encoder_tuner(self, ds: Dataset, device: str) -> Any:
        from anyrec.lm.toplayers import top_layers

        report = self.progress
        return top_layers(
            self.config.encoder.model,
            ds.catalog.texts(),
            self.config.finetune_layers,
            self.config.finetune_tokens,
            device,
            progress=(lambda d, t: report("encode lower layers", d, t)) if report else None,
        )

    def _query_side(self, h: Any) -> Any:
        return query_side(h, self.config.temperature)

    def _item_rows(self, items: Any) -> Any:
        return item_rows(items, self.config.temperature)

    def _holdout_ndcg(self, hold: np.ndarray | None, users: np.ndarray | None, seqs: list[np.ndarray]) -> float:
        if hold is None or users is None or len(hold) == 0:
            return 0.0
        self._cache_table()
        inputs = [seqs[u][:-1] for u in users]
        return float(held_out_gains(self._score_sequences(inputs), inputs, hold).mean())

    # ---- persistence ----------------------------------------------------------------
    def extra_state(self) -> dict[str, np.ndarray]:
        """The network's weights as numpy arrays (for :func:`anyrec.app.persist.save_model`)."""
        return {k: v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}

    def load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        torch = torch_module()
        self._device = "cpu"
        self.net_ = build_network(self.n_items_, self.text_vectors_.shape[1], self.config)
        self.net_.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        self.net_.eval()
        self._cache_table()

    # ---- scoring ------------------------------------------------------------------
    def _cache_table(self) -> None:
        torch = torch_module()
        with torch.no_grad():
            t_text = torch.from_numpy(self.text_vectors_ - self._text_center()).to(self._device)
            t_seen = torch.from_numpy(self.item_seen_).to(self._device)
            self._table = self.net_.items(t_text, t_seen)

    def _text_center(self) -> np.ndarray | float:
        return getattr(self, "text_center_", 0.0)  # folders saved before center_text have none

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        self.seqs_ = self._sequences(ds)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (shipped to and from Ray workers) without the scoring caches; they are rebuilt on use."""
        state = super().__getstate__()
        for key in ("_item_side_cache", "_unit_text", "_scaled_prior", "_kept_scores"):
            state.pop(key, None)
        return state

    def _item_side(self) -> Any:
        """Every item's half of the logit, ``(n_items, hidden)``: computed once per item table, not per request."""
        cached = getattr(self, "_item_side_cache", None)
        if cached is None or cached[0] is not self._table:
            torch = torch_module()
            with torch.no_grad():
                cached = (self._table, self._item_rows(self._table[1:]))
            self._item_side_cache = cached
        return cached[1]

    def _queries(self, seqs: list[np.ndarray]) -> tuple[list[int], Any]:
        """The rows of ``seqs`` with any history and their query vectors ``(rows, hidden)`` (torch)."""
        torch = torch_module()
        rows = [r for r, s in enumerate(seqs) if len(s)]
        if not rows:
            return rows, None
        n = min(self.config.max_len, max(len(seqs[r]) for r in rows))
        batch = np.stack([np.pad(seqs[r][-n:], (n - len(seqs[r][-n:]), 0)) for r in rows])
        with torch.no_grad():
            seq = torch.from_numpy(batch.astype(np.int64)).to(self._device)
            return rows, self._query_side(self.net_(seq, self._table)[:, -1])  # (batch, hidden)

    def _score_sequences(self, seqs: list[np.ndarray], cols: np.ndarray | None = None) -> np.ndarray:
        """Model logits ``(len(seqs), items)`` over every item, or over the item indices ``cols``."""
        torch = torch_module()
        items = self._item_side()
        if cols is not None:
            items = items[torch.from_numpy(np.asarray(cols, dtype=np.int64)).to(items.device)]
        out = np.zeros((len(seqs), items.shape[0]), dtype=np.float32)
        rows, q = self._queries(seqs)
        if rows:
            with torch.no_grad():
                out[rows] = (q @ items.T).cpu().numpy()
        return out

    def score(self, users: np.ndarray) -> np.ndarray:
        seqs = [self.seqs_[int(u)] for u in users]
        # back to cosine units (× temperature), comparable with the text term
        t = self.config.temperature if self.config.temperature > 0 else 1.0
        scores = self._kept(0, "network", users, lambda: self._score_sequences(seqs) * t)
        side = self._side_terms(seqs, users=users)
        return scores.copy() if side is None else scores + side  # never the kept array itself: callers mask it

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None,
                      candidates: np.ndarray | None = None) -> np.ndarray:
        """Scores for a live history (of every item, or of the item indices ``candidates``): the
        sequence is the positive events (oldest first), as the fitted history is; negative events
        push their nearest items by text down (``push``, ``kin``)."""
        items = np.asarray(items, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        seq = items[weights > 0] + 1
        scores = self._score_sequences([seq], candidates)[0]
        if self.config.temperature > 0:
            scores *= self.config.temperature
        side = self._side_terms([seq], candidates)
        if side is not None:
            scores = scores + side[0]
        return self._minus_dislikes(scores, items, weights, candidates)

    def _minus_dislikes(self, scores: np.ndarray, items: np.ndarray, weights: np.ndarray,
                        candidates: np.ndarray | None) -> np.ndarray:
        neg = weights < 0
        if neg.any() and self.config.push > 0 and self.config.use_text:
            push = kin_push(self._unit_text_table(), items[neg], weights[neg], self.config.kin, candidates, items)
            scores = scores - self.config.push * push
        return scores

    def add_items(self, vectors: np.ndarray) -> bool:
        """Append new items (a catalog update while serving): text path only, as for an item never
        seen in training; an id-only model gives them zero vectors."""
        torch = torch_module()
        v = np.asarray(vectors, dtype=np.float32)
        if self._picture_weight() > 0:  # new items: their text, no picture side until a refit
            v = self.text_query(v)
        if self.config.use_text:
            base = getattr(self, "pretrained_vectors_", None)
            if base is not None:
                self.pretrained_vectors_ = np.vstack([base, v])
            self.text_vectors_ = np.vstack([self.text_vectors_, v])
            with torch.no_grad():
                rows = self.net_.adaptor(torch.from_numpy(v - self._text_center()).to(self._device))  # (new, hidden)
        else:
            rows = torch.zeros((len(v), self._table.shape[1]), device=self._table.device)
        self._table = torch.cat([self._table, rows.to(self._table.dtype)], 0)
        self.item_seen_ = np.r_[self.item_seen_, np.zeros(len(v), dtype=np.float32)]
        if getattr(self, "popularity_prior_", None) is not None:  # nobody has touched them: the average prior
            self.popularity_prior_ = np.r_[self.popularity_prior_, np.zeros(len(v), dtype=np.float32)]
        self.n_items_ += len(v)
        return True

    # ---- capabilities (see Recommender) ---------------------------------------------
    def reads_text(self) -> bool:
        return bool(self.config.use_text)

    def use_item_vectors(self, vectors: np.ndarray) -> None:
        self._given_vectors = vectors

    def item_priors(self) -> np.ndarray | None:
        return self._prior()

    def text_table(self) -> np.ndarray | None:
        return self._unit_text_table() if self.config.use_text else None

    def text_query(self, vectors: np.ndarray) -> np.ndarray:
        v = super().text_query(vectors)
        pics = getattr(self, "image_vectors_", None)
        return v if pics is None else fuse_rows(v, pics[:0], self._picture_weight())

    def query_vectors(self, texts: list[str], encoded: np.ndarray) -> np.ndarray:
        w = self._picture_weight()
        v = self.text_query(encoded)
        return v if w <= 0 else with_picture_side(v, texts, self.config.image_encoder, self.config.encoder.cache_dir, w)

    def encoded_items(self) -> np.ndarray | None:
        if not self.config.use_text:
            return None
        if getattr(self, "raw_text_", None) is not None:
            return self.raw_text_
        return (
            self.pretrained_vectors_ if getattr(self, "pretrained_vectors_", None) is not None else self.text_vectors_
        )

    def text_encoder(self) -> TextEncoder | None:
        return shared_encoder(self.config.encoder) if self.config.use_text else None

class SASRec(Sequential):
    """Id-only SASRec on the sequential model's trainer, so "what does text add" is one code path."""

    name = "sasrec"
    Config = SASRecConfig
    # The text terms need text; the popularity prior does not, and cosine logits have no per-item bias to
    # learn popularity with, so SASRec searches the same prior the sequential model does (like with like).
    tuning_grid: ClassVar[dict[str, list[Any]]] = {"popularity": Sequential.tuning_grid["popularity"]}
