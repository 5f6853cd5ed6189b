"""Settings of the generative model (semantic ids, the decoder, its training and decoding)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from anyrec.lm.encoder import EncoderConfig, nest_encoder


@dataclass(frozen=True)
class GenerativeConfig:
    """Generative model settings.

    Attributes:
        encoder: the text encoder's settings (:class:`~anyrec.lm.encoder.EncoderConfig`, as the sequential model's).
        levels, codebook, kmeans_iters: semantic ids of ``levels`` codes out of ``codebook`` each
            (plus one collision code), residual k-means with this many iterations per level;
            ``balanced_codes``: capacity-bound clusters at every level (see :class:`CodesConfig`); on
            Amazon Scientific collisions fell from 32 % to 8 % of items and test NDCG@10 rose 0.0741 → 0.0785.
        collision_codes: size of the collision level (0 = twice the largest group, at least 8;
            headroom for items added later).
        max_items: items of history in the prompt (and per training window).
        layers, hidden, heads, dropout: the GPT-2 decoder.
        lr, warmup_steps, weight_decay, batch_size, epochs, patience, valid_every, max_minutes: optimisation
            (linear warm-up to ``lr``, then constant);
            early stopping on validation NDCG@10 every ``valid_every`` epochs. ``batch_size`` and
            ``max_minutes`` ``None`` are left to the log (:func:`sized_for`: 64 and no budget below 40,000 training
            windows, 256 and 6 minutes from there: each test list is a beam search), and the fit says what it chose.
        valid_users: early stopping on a seeded sample of this many validation users (every list is a beam
            search); ``None`` = left to the log: all below 40,000 training windows, 5,000 from there; 0 = all.
        beam: beam width; the list is the beam's top (at least the list length asked for).
        new_items: also generate items never seen in training (from their text codes).
        init: a saved generative model folder whose codebooks and decoder weights start this fit.
        gen_batch: users per generation batch.
        device: ``cpu``, ``cuda`` or ``auto``; threads: torch CPU threads (0 = default).
        seed: seeds the codebooks, initialisation and batch order.
        log_dir, resume: ``train_log.jsonl`` and ``checkpoint.pt`` there; continue from the checkpoint.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    levels: int = 3
    codebook: int = 256
    kmeans_iters: int = 25
    balanced_codes: bool = True
    collision_codes: int = 0
    max_items: int = 20
    layers: int = 4
    hidden: int = 128
    heads: int = 4
    dropout: float = 0.1
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    batch_size: int | None = None
    epochs: int = 200
    patience: int = 5
    valid_every: int = 1
    max_minutes: float | None = None
    valid_users: int | None = None
    beam: int = 20
    new_items: bool = True
    init: str = ""
    gen_batch: int = 128
    device: str = "cpu"
    threads: int = 0
    seed: int = 0
    log_dir: str = ""
    resume: bool = False

    def __post_init__(self) -> None:
        nest_encoder(self)


LARGE_LOG_VALID_USERS = 5_000  # users a large log's early stopping generates lists for, each epoch
# A large log's training budget: shorter than the sequential model's, as every test list is a beam search (on the
# 50,000-user log: 203 s for the test users, 70 s for the codes; the evaluate took 9:20 in all). One epoch there
# takes ~4.7 minutes on 2 cores, so 6 and 9 minutes both fit one epoch; it does not learn that log in 15 minutes.
LARGE_LOG_MINUTES = 6.0


def sized_for(cfg: GenerativeConfig, windows: int) -> tuple[GenerativeConfig, dict[str, str]]:
    """``batch_size``, ``max_minutes`` and ``valid_users`` (``None``) set from the number of training windows, as the
    sequential model sizes its own (the code vocabulary is small: no sampled softmax; batches are always
    length-bucketed); options the user gave are kept. Returns the concrete settings and, for each option chosen here,
    its value and why."""
    from anyrec.models.trainer import BUDGET_REASONS, by_log_size

    changes: dict[str, object] = {}
    chosen: dict[str, str] = {}
    if cfg.batch_size is None:
        changes["batch_size"], chosen["batch_size"] = by_log_size(windows, 64, 256)
    if cfg.valid_users is None:
        changes["valid_users"], chosen["valid_users"] = by_log_size(
            windows,
            0,
            LARGE_LOG_VALID_USERS,
            "every validation user",
            "early stopping on a seeded sample of the validation users",
        )
    if cfg.max_minutes is None:
        changes["max_minutes"], chosen["max_minutes"] = by_log_size(windows, 0.0, LARGE_LOG_MINUTES, *BUDGET_REASONS)
    return replace(cfg, **changes), chosen  # type: ignore[arg-type]
