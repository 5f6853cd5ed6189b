"""Generative recommender: semantic ids from item text, a decoder that writes the next item's id.

In the line of TIGER: each item's text vector is quantised into a few codes (residual
k-means, :mod:`anyrec.models.generative.codes`); a GPT-2 built from a config learns, with the causal-LM
objective, to continue a user's history written as those codes; recommending is beam search
over the catalog's prefix trie, so every generated id is a real item, and the top of the beam
is the list. Items never seen in training have codes from their text alone, so they can be
generated (``new_items``); ``pretrained`` starts from another generative model's codebooks and
decoder (pretrain on other catalogs, fine-tune here).

Scores: the beam's items carry their sequence log-probability; every other item is ``-inf``
(it was not generated). Exclusions (seen items) and filters (allowed items) are applied inside
the trie, so they never shorten the list.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import Any, ClassVar

import numpy as np

from anyrec.data.dataset import Dataset
from anyrec.errors import ConfigError
from anyrec.lm.encoder import TextEncoder, encode_catalog, shared_encoder
from anyrec.models.base import Filters, Recommender
from anyrec.models.generative.codes import (
    CodesConfig,
    SemanticIds,
    add_collision_codes,
    canonical_order,
    code_report,
    collision_numbers,
)
from anyrec.models.generative.config import GenerativeConfig, sized_for
from anyrec.models.generative.decoder import (
    Vocab,
    beam_search,
    build_decoder,
    history_prompt,
    training_windows,
)
from anyrec.models.generative.train import train_decoder
from anyrec.models.generative.trie import CodeTrie
from anyrec.models.trainer import announce_sizing

log = logging.getLogger(__name__)


class Generative(Recommender):
    """Semantic ids + GPT-2 decoder + trie-constrained beam search."""

    name = "generative"
    Config = GenerativeConfig
    trains_with_validation: ClassVar[bool] = True
    # Training-time grid, searched when an experiment asks (as for sequential and sasrec: five fits).
    training_grid: ClassVar[dict[str, list[Any]]] = {
        "dropout": [0.1, 0.2, 0.3],
        "lr": [1e-3, 3e-3],
        "hidden": [128, 256],
    }

    def __init__(self, config: Any = None, *, item_vectors: np.ndarray | None = None, **kw: Any) -> None:
        super().__init__(config, **kw)
        self._given_vectors = item_vectors

    # ---- codes ------------------------------------------------------------------------
    def _text(self, ds: Dataset) -> np.ndarray:
        c = self.config
        return encode_catalog(ds.catalog.texts(), encoder=c.encoder, threads=c.threads,
                              given=self._given_vectors, progress=self.progress)

    def _make_codes(self, vectors: np.ndarray, keys: list[str]) -> np.ndarray:
        cfg = self.config
        if self._pretrained is not None:
            quant = self._pretrained[0]
            semantic = quant.encode(vectors)
            order = canonical_order(vectors, keys)
            codes = np.empty((len(vectors), semantic.shape[1] + 1), dtype=np.int64)
            codes[order, :-1] = semantic[order]
            codes[order, -1] = collision_numbers(semantic[order])
        else:
            quant = SemanticIds(CodesConfig(cfg.levels, cfg.codebook, cfg.kmeans_iters, cfg.seed, cfg.balanced_codes))
            codes = quant.fit(vectors, keys)
        self.quantiser_ = quant
        return codes

    def _build_trie(self) -> None:
        self.trie_ = CodeTrie(self.codes_[self.generatable_], list(self.vocab_.sizes))
        self._trie_items = np.flatnonzero(self.generatable_)  # trie leaf -> item index
        self._to_leaf = np.full(len(self.codes_), -1, dtype=np.int64)  # item index -> trie leaf
        self._to_leaf[self._trie_items] = np.arange(len(self._trie_items))
        self._tokens = self.vocab_.tokens(self.codes_)  # (items, depth) token ids, built once per catalog
        self._leaves_cache: dict[Any, list[np.ndarray]] = {}

    # ---- fitting ------------------------------------------------------------------------
    def _fit(self, ds: Dataset) -> None:
        """Early-stops on ``fit``'s ``validate(model) -> NDCG@10``; without one, on each user's last training item."""
        import torch

        cfg = self.config
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self._pretrained = _load_pretrained(cfg.init) if cfg.init else None
        if self._pretrained is not None:  # the decoder's shape and the codebooks come with the weights
            shape = {
                k: getattr(self._pretrained[3], k)
                for k in ("levels", "codebook", "layers", "hidden", "heads", "max_items")
            }
            self.config = cfg = replace(cfg, **shape)
        vectors = self._text(ds)
        self.text_vectors_ = vectors
        codes = self._make_codes(vectors, list(ds.catalog.ids.raw_ids))
        report = code_report(codes, cfg.codebook)
        sizes = [int(len(c)) for c in self.quantiser_.codebooks_]
        largest = int(codes[:, -1].max()) + 1 if len(codes) else 1
        collision = cfg.collision_codes or max(8, 2 * largest)
        if self._pretrained is not None:
            collision = self._pretrained[1].sizes[-1]
        self.vocab_ = Vocab((*sizes, collision))
        self.generatable_ = codes[:, -1] < collision
        if not self.generatable_.all():
            log.warning(
                "%d items need a collision code beyond %d and cannot be generated",
                int((~self.generatable_).sum()),
                collision,
            )
        report["not_generatable"] = int((~self.generatable_).sum())
        self.codes_ = codes
        self.quantiser_state_ = self.quantiser_.state()["codebooks"]
        self.quantiser_mean_, self.quantiser_std_ = self.quantiser_.mean_, self.quantiser_.std_
        self.item_seen_ = np.bincount(ds.interactions.item, minlength=ds.n_items) > 0
        self._build_trie()
        self.seqs_ = [s + 1 for s in ds.interactions.sequences(ds.n_users)]
        seqs = [s - 1 for s in self.seqs_]
        torch.manual_seed(cfg.seed)  # the decoder's initial weights
        self.net_ = build_decoder(self.vocab_, cfg.max_items, cfg.layers, cfg.hidden, cfg.heads, cfg.dropout)
        if self._pretrained is not None:
            self.net_.load_state_dict(self._pretrained[2])
        tokens = self.vocab_.tokens(codes)
        validate = self._validate
        hold_users: np.ndarray | None = None
        if validate is None:  # hold each user's last training item out for early stopping
            hold_users = np.array([u for u, s in enumerate(seqs) if len(s) > 2], dtype=np.int64)
            train_seqs = [s[:-1] if len(s) > 2 else s for s in seqs]
        else:
            train_seqs = seqs
        windows = training_windows(tokens, [s for s in train_seqs if len(s)], cfg.max_items)
        log.info(
            "generative: %d training windows, vocabulary %d tokens, codes %s", len(windows), self.vocab_.size, report
        )
        self.config, self.report_.sized = sized_for(cfg, len(windows))
        cfg = self.config
        announce_sizing(self.name, self.report_.sized, self.progress)
        # what early stopping scores (anyrec.eval.experiment.validator)
        self.validation_users = max(0, cfg.valid_users or 0)
        evaluate = (lambda: validate(self)) if validate is not None else (lambda: self._holdout_ndcg(hold_users, seqs))
        summary = train_decoder(self.net_, windows, replace(cfg, device=self._device()), evaluate, self.progress)
        self.net_.to("cpu" if cfg.device == "cpu" else self._device())
        self.report_.best_valid_ndcg = summary["best_valid_ndcg"]
        self.report_.epochs = summary["history"]

    def _device(self) -> str:
        import torch

        d = self.config.device
        return ("cuda" if torch.cuda.is_available() else "cpu") if d == "auto" else d

    def _holdout_ndcg(self, users: np.ndarray | None, seqs: list[np.ndarray]) -> float:
        if users is None or not len(users):
            return 0.0
        users = users[:2000]
        prompts = [seqs[u][:-1] for u in users]
        excl_rows = (
            np.concatenate([np.full(len(p), r) for r, p in enumerate(prompts)]) if prompts else np.zeros(0, np.int64)
        )
        found = self._generate(prompts, excl_rows.astype(np.int64), np.concatenate(prompts).astype(np.int64), None, 10)[
            0
        ]
        target = np.array([seqs[u][-1] for u in users])
        hit = found == target[:, None]
        rank = np.where(hit.any(1), hit.argmax(1), -1)
        return float(np.where(rank >= 0, 1.0 / np.log2(np.maximum(rank, 0) + 2), 0.0).mean())

    # ---- generation -----------------------------------------------------------------------
    def _leaves(self, allowed: np.ndarray | None) -> list[np.ndarray]:
        """Leaf counts of the trie for an allowed-item set (cached per set)."""
        mask = np.ones(self.n_items_, dtype=bool) if allowed is None else np.zeros(self.n_items_, dtype=bool)
        if allowed is not None:
            mask[np.asarray(allowed, dtype=np.int64)] = True
        if not self.config.new_items:
            mask &= self.item_seen_[: self.n_items_]
        key = mask.tobytes()
        if key not in self._leaves_cache:
            self._leaves_cache = {key: self.trie_.leaf_counts(np.flatnonzero(mask[self._trie_items]))}
        return self._leaves_cache[key]

    def _generate(self, prompts: list[np.ndarray], excl_rows: np.ndarray, excl_items: np.ndarray,
                  allowed: np.ndarray | None, beam: int) -> tuple[np.ndarray, np.ndarray]:
        """Beam search for each history in ``prompts`` (item indices); ``(items, log_probs)`` (rows × beam)."""
        tokens = self._tokens
        leaves = self._leaves(allowed)
        keep = self._to_leaf[excl_items] >= 0
        excl_rows, excl_leaf = excl_rows[keep], self._to_leaf[excl_items[keep]]
        items = np.full((len(prompts), beam), -1, dtype=np.int64)
        scores = np.full((len(prompts), beam), -np.inf)
        bs = max(1, self.config.gen_batch)
        for start in range(0, len(prompts), bs):
            sel = (excl_rows >= start) & (excl_rows < start + bs)
            blocked = self.trie_.exclusions(excl_rows[sel] - start, excl_leaf[sel], leaves)
            chunk = [history_prompt(tokens, p, self.config.max_items) for p in prompts[start : start + bs]]
            found, lp = beam_search(
                self.net_, chunk, self.trie_, self.vocab_, beam, leaves, blocked, self._net_device()
            )
            items[start : start + bs] = np.where(found >= 0, self._trie_items[np.maximum(found, 0)], -1)
            scores[start : start + bs] = lp
        return items, scores

    def _net_device(self) -> str:
        return str(next(self.net_.parameters()).device)

    def masked_scores(self, users: np.ndarray, exclude_seen: bool = True, filters: Filters | None = None) -> np.ndarray:
        """Log-probabilities of the generated items, ``-inf`` elsewhere; exclusions and filters act in the trie."""
        users = self._checked_users(users)
        mats = ([self.seen_] if exclude_seen else []) + (
            [filters.exclude] if filters is not None and filters.exclude is not None else []
        )
        rows, items = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for mat in mats:
            sub = mat[users]
            rows.append(np.repeat(np.arange(len(users)), np.diff(sub.indptr)))
            items.append(sub.indices.astype(np.int64))
        prompts = [self.seqs_[int(u)] - 1 for u in users]
        beam = max(self.config.beam, getattr(self, "_min_beam", 0))
        found, lp = self._generate(prompts, np.concatenate(rows), np.concatenate(items),
                                   filters.items if filters is not None else None, beam)
        self._count(found, np.concatenate(rows), np.concatenate(items), filters)
        out = np.full((len(users), self.n_items_), -np.inf)
        r, c = np.nonzero(found >= 0)
        out[r, found[r, c]] = lp[r, c]
        return out

    def _count(self, found: np.ndarray, rows: np.ndarray, items: np.ndarray, filters: Filters | None) -> None:
        """Generation checks, accumulated in ``report_.checks``: every generated id must be an item
        whose code the trie holds, allowed by the filters and not excluded for that user."""
        stats = self.report_.checks or {"lists": 0, "generated": 0, "invalid": 0, "short_lists": 0}
        self.report_.checks = stats
        valid = found >= 0
        ids = found[valid]
        ok = self.trie_.item_of(self.codes_[ids]) >= 0
        if filters is not None and filters.items is not None:
            ok &= np.isin(ids, filters.items)
        excluded = set(zip(rows.tolist(), items.tolist()))
        r = np.nonzero(valid)[0]
        ok &= np.array([(int(a), int(b)) not in excluded for a, b in zip(r, ids)], dtype=bool)
        stats["lists"] += len(found)
        stats["generated"] += int(valid.sum())
        stats["invalid"] += int((~ok).sum())
        stats["short_lists"] += int((valid.sum(1) < min(10, found.shape[1])).sum())

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.masked_scores(users, exclude_seen=False)

    def recommend(self, users: np.ndarray | list[int], k: int = 10, exclude_seen: bool = True,
                  filters: Filters | None = None) -> tuple[np.ndarray, np.ndarray]:
        self._min_beam = int(k) if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else 0
        try:
            return super().recommend(users, k, exclude_seen, filters)
        finally:
            self._min_beam = 0

    def set_history(self, ds: Dataset) -> None:
        super().set_history(ds)
        self.seqs_ = [s + 1 for s in ds.interactions.sequences(ds.n_users)]

    def score_history(self, items: np.ndarray, weights: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Scores for a live history (the positive events, oldest first, are the prompt; every item
        with an event is excluded from the beam). Items outside the beam rank below it, ordered by
        the model's probability of their first code, so filters applied afterwards still find items."""
        import torch

        items = np.asarray(items, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        prompt = items[weights > 0]
        beam = max(self.config.beam, 50)
        found, lp = self._generate([prompt], np.zeros(len(items), np.int64), items, None, beam)
        tokens = self._tokens
        with torch.no_grad():
            ids = torch.from_numpy(history_prompt(tokens, prompt, self.config.max_items))[None].to(self._net_device())
            first = torch.log_softmax(self.net_(input_ids=ids).logits[0, -1].float(), -1).cpu().numpy()
        out = first[tokens[:, 0]].astype(np.float64)
        ok = found[0] >= 0
        floor = float(lp[0][ok].min()) if ok.any() else 0.0
        out = out - out.max() + floor - 1.0
        out[found[0][ok]] = lp[0][ok]
        return out

    def add_items(self, vectors: np.ndarray) -> bool:
        """New items (a catalog update while serving): codes from their text; generatable at once."""
        v = np.asarray(vectors, dtype=np.float32)
        new = add_collision_codes(self.codes_, self.quantiser_.encode(v))
        self.codes_ = np.vstack([self.codes_, new])
        self.text_vectors_ = np.vstack([self.text_vectors_, v])
        self.item_seen_ = np.r_[self.item_seen_, np.zeros(len(v), dtype=bool)]
        self.generatable_ = np.r_[self.generatable_, new[:, -1] < self.vocab_.sizes[-1]]
        self.n_items_ += len(v)
        self._build_trie()
        return True

    def _unit_text_table(self) -> np.ndarray:
        cached = getattr(self, "_unit_text", None)
        if cached is None or cached[0] is not self.text_vectors_:  # normalised once per table
            t = self.text_vectors_
            cached = (t, t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12))
            self._unit_text = cached
        return cached[1]

    # ---- capabilities (see Recommender) ---------------------------------------------
    def reads_text(self) -> bool:
        return True

    def use_item_vectors(self, vectors: np.ndarray) -> None:
        self._given_vectors = vectors

    def text_table(self) -> np.ndarray:
        return self._unit_text_table()

    def encoded_items(self) -> np.ndarray:
        return self.text_vectors_

    def text_encoder(self) -> TextEncoder:
        return shared_encoder(self.config.encoder)

    def describe(self) -> dict[str, Any]:
        return describe(self)

    # ---- persistence ---------------------------------------------------------------------
    def extra_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}

    def load_extra_state(self, state: dict[str, np.ndarray]) -> None:
        import torch

        cfg = self.config
        self.quantiser_ = SemanticIds.from_state(CodesConfig(cfg.levels, cfg.codebook, cfg.kmeans_iters, cfg.seed), {
            "mean": self.quantiser_mean_, "std": self.quantiser_std_, "codebooks": self.quantiser_state_})
        sizes = [len(c) for c in self.quantiser_.codebooks_]
        emb = state["transformer.wte.weight"]
        self.vocab_ = Vocab((*sizes, int(emb.shape[0]) - 2 - int(sum(sizes))))
        torch.manual_seed(cfg.seed)  # the decoder's initial weights
        self.net_ = build_decoder(self.vocab_, cfg.max_items, cfg.layers, cfg.hidden, cfg.heads, cfg.dropout)
        self.net_.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False)
        self.net_.eval()
        self.generatable_ = np.asarray(self.generatable_, dtype=bool)
        self.item_seen_ = np.asarray(self.item_seen_, dtype=bool)
        self._build_trie()


def _load_pretrained(folder: str) -> tuple[SemanticIds, Vocab, dict[str, Any], GenerativeConfig]:
    """Codebooks, vocabulary, decoder weights and config of a saved generative model."""
    from anyrec.models.folder import read_folder, read_meta

    kind = read_meta(folder)["model"]
    if kind != Generative.name:
        raise ConfigError(f"{folder}: --pretrained needs a saved generative model, this one is {kind!r}")
    model, _ds, _meta = read_folder(folder, {Generative.name: Generative})
    assert isinstance(model, Generative)
    return model.quantiser_, model.vocab_, model.net_.state_dict(), model.config


def describe(model: Generative) -> dict[str, Any]:
    """What ``anyrec fit`` prints: codebook use, collisions, decoder size."""
    n_params = sum(p.numel() for p in model.net_.parameters())
    return {
        "codes": code_report(model.codes_, model.config.codebook),
        "vocabulary": model.vocab_.size,
        "decoder_parameters": int(n_params),
        "config": {
            k: v for k, v in asdict(model.config).items() if k in ("levels", "codebook", "layers", "hidden", "beam")
        },
    }
