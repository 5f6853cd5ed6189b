"""Settings of the sequential model and of its id-only variant (SASRec).

Kept apart from the model so the network (:mod:`.network`) and the recommender (:mod:`.model`)
both read it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anyrec.lm.encoder import EncoderConfig, nest_encoder
from anyrec.models.trainer import BUDGET_REASONS, LARGE_LOG_MINUTES, by_log_size  # shared with the generative model


@dataclass(frozen=True)
class SequentialConfig:
    """Sequential model settings.

    Attributes:
        encoder: the text encoder's settings (:class:`~anyrec.lm.encoder.EncoderConfig`; ``encoder=NAME`` sets the
            model, ``encoder.FIELD=VALUE`` one setting; its ``threads`` default to the model's).
        use_text, use_ids: which item representations to fuse (at least one).
        hidden, layers, heads, max_len, dropout: the transformer (``max_len`` items of history).
        experts: linear experts in the text adaptor.
        temperature: logits are cosine similarities divided by this (0 = raw inner products).
        text_blend: weight of a plain text-similarity term added at scoring time: cosine between
            each item's pretrained text vector and the recency-weighted mean of the user's history
            vectors (half-life ``half_life`` items; 0 weighs all equally). Chosen on validation; it keeps
            what the pretrained text space knows when the fine-tuned model has drifted from it
            (new items in particular).
        kernel: the text term's pooling: 0 = cosine with the recency-weighted profile; τ > 0 = the history
            items soft-max pooled, ``τ log Σ_h p_h exp(cos(h, i) / τ)`` (as zero-shot's ``kernel``). Chosen on
            validation; a version served from FAISS indexes keeps 0 (no single query vector).
        popularity: weight of the log-popularity prior of the training rows (standardised; cold items 0),
            added at scoring time. Chosen on validation.
        center_text: the network reads each item's text vector less the catalog's mean text vector (known
            from the catalog's text alone, so on day one): the component every item of a catalog shares no
            longer hides what sets them apart, and catalogs read alike (pretraining centres each source on
            its own mean). Off with ``finetune_layers`` (the tuned vectors move every epoch).
        id_dropout: share of id embeddings dropped per step so the text path learns too.
        lr, weight_decay, batch_size: optimisation; ``batch_size`` ``None`` = chosen from the log (see
            :func:`sized_for`).
        warmup_steps: the learning rate rises linearly from 0 over this many steps (0 = none).
        lr_schedule: ``constant``, or ``cosine``: after the warm-up it decays to 0 along half a cosine
            over ``epochs`` epochs (set ``epochs`` to the horizon you mean; early stopping may end sooner).
        block: the transformer block: ``prenorm`` (pre-norm attention and GELU MLP, plain residuals) or
            ``ligr`` (LiGR, as eSASRec uses: both residual branches gated by a sigmoid of the block's input,
            a SwiGLU feed-forward).
        epochs, patience: at most ``epochs``; stop after ``patience`` evaluations without a
            better validation NDCG@10 (the best checkpoint is kept). 20 by default: with 5, a run could stop
            on a plateau (ml-100k, leave-one-out: 15 epochs, test NDCG@10 0.0905; with 20, 75 epochs, 0.1182);
            large logs are held by ``max_minutes`` instead.
        sampled_softmax: 0 = full softmax; N > 0 = N shared uniform negatives per batch; ``None`` = chosen
            from the catalog's size (:func:`sized_for`).
        max_minutes: training time budget (0 = none; ``None`` = chosen from the log, see :func:`sized_for`: none
            below 40,000 training windows, 9 minutes from there, so a large log's evaluate ends within 15 minutes).
        search_minutes: the validation search's time budget (0 = none; ``None`` = chosen from the log, see
            :func:`sized_for`: none below 40,000 training windows, else 2 minutes); out of time, the search keeps
            the best point scored so far and says how far it got.
        device: ``cpu``, ``cuda`` or ``auto``.
        threads: torch CPU threads (0 = torch's default).
        seed: seeds initialisation, shuffling and dropout.
        log_dir: where to write ``train_log.jsonl`` and ``checkpoint.pt`` ('' = nowhere).
        resume: continue from ``log_dir/checkpoint.pt`` when it exists.
        finetune_layers: fine-tune the text encoder end to end: this many top transformer layers
            train with the recommender (0 = frozen encoder, the default). The catalog is cut to
            ``finetune_tokens`` tokens; each step re-encodes up to ``finetune_items`` of the
            items it touches through the tuned layers (the rest use the vectors of the last
            epoch, refreshed after every epoch), with learning rate ``finetune_lr``. With
            ``log_dir`` the tuned encoder is saved to ``log_dir/encoder`` (usable as ``--encoder``).
        bucket_by_length: batch training windows of similar length together (much less padding
            where most histories are short, e.g. Amazon reviews); ``None`` = on where the mean
            training window is under half of ``max_len`` (:func:`sized_for`).
        push: live scoring only: the most a negative event (dislike, skip, low rating)
            lowers one of its ``kin`` nearest items by text (cosine units; graded by closeness,
            see :func:`anyrec.models.feedback.kin_push`); the sequence itself reads positive events only.
        kin: how many of a negative item's nearest items it pushes down (``push`` and ``kin`` as zero-shot's).
        init: a folder written by ``anyrec pretrain-rec``: the network starts from its weights (the
            settings that shape them, and its encoder, come from it; an id table, where ``use_ids``,
            starts new). Its validation figure before any training is the one to beat, so a fit never
            ends below where it started. ``''`` = start from scratch.
        image_encoder, image_weight: the catalog's pictures fused into the text vectors the network and the text
            terms read (``[√(1−w)·text, √w·picture]``, see :mod:`anyrec.models.whitening`); ``image_weight`` is a
            training option (searched with ``--tune-training``), not with ``init``.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    use_text: bool = True
    use_ids: bool = True
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    max_len: int = 50
    dropout: float = 0.3
    experts: int = 4
    center_text: bool = False
    block: str = "prenorm"
    id_dropout: float = 0.1
    temperature: float = 0.07
    text_blend: float = 0.0
    half_life: float = 3.0
    kernel: float = 0.0
    popularity: float = 0.0
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int | None = None
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    epochs: int = 200
    patience: int = 20
    sampled_softmax: int | None = None
    max_minutes: float | None = None
    search_minutes: float | None = None
    device: str = "cpu"
    threads: int = 0
    seed: int = 0
    log_dir: str = ""
    resume: bool = False
    finetune_layers: int = 0
    finetune_lr: float = 5e-5
    finetune_tokens: int = 64
    finetune_items: int = 128
    bucket_by_length: bool | None = None
    push: float = 0.05
    kin: int = 10
    init: str = ""
    image_encoder: str = ""
    image_weight: float = 0.5

    def __post_init__(self) -> None:
        nest_encoder(self)


BLOCKS = ("prenorm", "ligr")
SCHEDULES = ("constant", "cosine")


def check_choices(cfg: SequentialConfig) -> None:
    """A clear error for an option outside its choices (``block``, ``lr_schedule``)."""
    from anyrec.errors import ConfigError

    for name, choices in (("block", BLOCKS), ("lr_schedule", SCHEDULES)):
        if getattr(cfg, name) not in choices:
            raise ConfigError(f"{name}={getattr(cfg, name)!r}; choose one of {', '.join(choices)}")


FULL_SOFTMAX_ITEMS = 8192  # above this many items the default loss is a sampled softmax
NEGATIVES = 1024  # its shared negatives per batch (on Beauty's 12,101 items: 3-4x faster than full, as accurate)
LARGE_LOG_SEARCH_MINUTES = 2.0  # and its validation search's budget (no grid point is begun that would end past it)


def sized_for(cfg: SequentialConfig, n_items: int, lengths: list[int]) -> tuple[SequentialConfig, dict[str, str]]:
    """The options left to the data (``None``: ``sampled_softmax``, ``batch_size``, ``bucket_by_length``,
    ``max_minutes``, ``search_minutes``) set from the catalog size and the training windows' lengths; options
    the user gave are kept. Returns the concrete settings and, for each option chosen here, its value and why."""
    from dataclasses import replace

    chosen: dict[str, str] = {}
    changes: dict[str, object] = {}
    if cfg.sampled_softmax is None:
        value = NEGATIVES if n_items > FULL_SOFTMAX_ITEMS else 0
        changes["sampled_softmax"] = value
        chosen["sampled_softmax"] = (
            f"{value} ({n_items:,} items > {FULL_SOFTMAX_ITEMS:,}: shared negatives per batch)"
            if value
            else f"0 (full softmax over {n_items:,} items ≤ {FULL_SOFTMAX_ITEMS:,})"
        )
    if cfg.bucket_by_length is None:
        mean = float(sum(lengths) / len(lengths)) if lengths else 0.0
        on = bool(lengths) and mean < cfg.max_len / 2
        changes["bucket_by_length"] = on
        chosen["bucket_by_length"] = (
            f"{str(on).lower()} (mean training window {mean:.1f} items {'<' if on else '≥'} max_len/2 = "
            f"{cfg.max_len / 2:g})"
        )
    windows = len(lengths)
    if cfg.max_minutes is None:
        changes["max_minutes"], chosen["max_minutes"] = by_log_size(windows, 0.0, LARGE_LOG_MINUTES, *BUDGET_REASONS)
    if cfg.search_minutes is None:
        changes["search_minutes"], chosen["search_minutes"] = by_log_size(
            windows, 0.0, LARGE_LOG_SEARCH_MINUTES, "no budget", "the validation search keeps the best point it reached"
        )
    if cfg.batch_size is None:
        changes["batch_size"], chosen["batch_size"] = by_log_size(windows, 128, 256)
    return replace(cfg, **changes), chosen  # type: ignore[arg-type]


@dataclass(frozen=True)
class SASRecConfig(SequentialConfig):
    """The sequential model with text switched off: item ids only (SASRec with a cross-entropy loss).

    Id dropout is off by default: with ids as the only representation, a dropped id is an empty item.
    """

    use_text: bool = False
    use_ids: bool = True
    id_dropout: float = 0.0


@dataclass(frozen=True)
class TransferConfig(SequentialConfig):
    """The text-only network pretrained across catalogs (``init``, required), used on a new one: no item
    ids, so every item is its text; ``epochs`` 0 = no training on the target (day one), > 0 = fine-tuned."""

    use_ids: bool = False
    id_dropout: float = 0.0
    epochs: int = 0


@dataclass(frozen=True)
class TransferTunedConfig(TransferConfig):
    """:class:`TransferConfig` fine-tuned on the target's training rows to early stopping."""

    epochs: int = 200
