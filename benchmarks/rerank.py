"""Ranking stages behind a retriever: the click classifier (full ranking) and the LM scorer (20 candidates).

One dataset, one leave-one-out split, anyrec's evaluator (full ranking, the whole history
masked, history at test time = training + validation, held-out items lose ties):

1. the retriever (default ``sequential``) fitted on the training rows with validation early
   stopping, read on test — then ``retriever → click classifier`` (trained on the same training
   rows, hard negatives from the retriever, epochs and blend chosen on validation; with
   ``--option ranker.holdout=n`` listwise on held-out lists instead), read by the same
   evaluator; the added time per user as a ratio to the retriever's own.
2. the 20-candidate protocol on a seeded sample of test users: the true next item + the
   retriever's 19 best others, shuffled; HitRate@1 / NDCG@10 of the LM scorer's order vs the
   retriever's own order of the same 20.

    python benchmarks/rerank.py --dataset ml-100k [--stages classifier,llm] [--option sequential.X=V]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.cli.common import parse_options, read_source
from anyrec.cli.evaluate import with_text_defaults
from anyrec.data.split import SplitConfig, make_split, phase_matrices
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.flow import fit_one, validator
from anyrec.rank.cross_config import ClickClassifierConfig
from anyrec.rank.stage import sequences
from anyrec.rank.train import fit_click_stage
from candidates import candidate_lists, list_metrics, target_ranks  # beside this script

ROOT = Path(__file__).resolve().parents[1]


def seconds_per_user(model: Any, users: np.ndarray, batch: int = 64) -> float:
    t0 = time.perf_counter()
    for s in range(0, len(users), batch):
        model.masked_scores(users[s : s + batch], exclude_seen=True)
    return (time.perf_counter() - t0) / max(1, len(users))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--config", default=None, help="TOML config for a table dataset")
    ap.add_argument("--retriever", default="sequential")
    ap.add_argument("--stages", default="classifier,llm")
    ap.add_argument("--option", action="append", default=[], help="MODEL.FIELD=VALUE (ranker.FIELD for the classifier)")
    ap.add_argument("--depth", type=int, default=20, help="retrieved items the classifier re-ranks")
    ap.add_argument("--lm-users", type=int, default=500, help="test users in the 20-candidate protocol (seeded sample)")
    ap.add_argument("--lm", default="smollm2")
    ap.add_argument(
        "--ranker-dir",
        default=None,
        help="reuse a trained classifier: choose the blend again on validation, no training",
    )
    ap.add_argument(
        "--lora-lists", type=int, default=0, help="LoRA-fine-tune the LM on this many validation-phase lists first"
    )
    ap.add_argument("--lora-minutes", type=float, default=10.0)
    ap.add_argument("--timing-users", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    ds = read_source(args.dataset, args.config)
    opts = parse_options(args.option)
    split = make_split(ds, SplitConfig(protocol="loo", seed=args.seed))
    train = split.train_dataset(ds)
    name = args.retriever
    t0 = time.perf_counter()
    retriever = fit_one(name, args.seed, with_text_defaults(name, dict(opts.get(name, {})), None, False), train,
                         validator(ds, split, 10), None, None)
    result: dict[str, Any] = {
        "dataset": ds.name,
        "retriever": name,
        "fit_seconds": round(time.perf_counter() - t0, 1),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "rule": "loo, full ranking, whole history masked, train+valid history at test, held-out items lose ties",
    }
    rows: list[tuple[str, dict[str, float]]] = []
    stage = None
    if "classifier" in args.stages and args.ranker_dir:
        from anyrec.rank.cross import ClickClassifier
        from anyrec.rank.train import validate_stage

        stage, result["classifier"] = validate_stage(
            retriever, ds, split, ClickClassifier.load(args.ranker_dir, ds.catalog), args.depth
        )
        logging.info("classifier from %s: %s", args.ranker_dir, result["classifier"])
    elif "classifier" in args.stages:
        cfg = ClickClassifierConfig(**{k: v for k, v in opts.get("ranker", {}).items()}, seed=args.seed)
        last = [0.0]

        def progress(done: int, total: int) -> None:  # a log line every 30 s
            if time.perf_counter() - last[0] > 30 or done == total:
                last[0] = time.perf_counter()
                logging.info("ranker training: step %d of at most %d", done, total)

        stage, report = fit_click_stage(retriever, ds, split, cfg, depth=args.depth,
                                        out_dir=ROOT / "results" / f"ranker-{ds.name}-{name}", progress=progress)
        result["classifier"] = report
    test_hist = split.history_dataset(ds, "test")
    retriever.set_history(test_hist)
    rows.append((name, evaluate_model(retriever, ds, split, "test", (10, 20))))
    relevant, _ = phase_matrices(ds, split, "test")
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    timing = users[: args.timing_users]
    base_s = seconds_per_user(retriever, timing)
    result["retriever_seconds_per_user"] = base_s
    if stage is not None:
        stage.set_history(test_hist)
        rows.append((f"{name} → classifier", evaluate_model(stage, ds, split, "test", (10, 20))))
        stage_s = seconds_per_user(stage, timing)
        result["stage_seconds_per_user"] = stage_s
        result["latency_ratio"] = stage_s / base_s
        alone = result.get("classifier", {}).get("lists", {}).get("evidence_alone")
        if alone:  # the ablation: the same features and their own weights, no text (blend chosen on validation)
            from anyrec.rank.evidence import Evidence, EvidenceRanker
            from anyrec.rank.stage import Reranked, RerankedConfig

            by = {float(b): v for b, v in alone["valid_ndcg@10_by_blend"].items()}
            names = stage.ranker.prior_.evidence.names
            ev = EvidenceRanker(
                Evidence(names, recent=stage.ranker.config.history).fit(train), np.array(alone["weights"])
            )
            ablation = Reranked(
                retriever, ev, RerankedConfig(depth=args.depth, blend=max(by, key=lambda b: (by[b], b)))
            )
            ablation.set_history(test_hist)
            rows.append(
                (f"{name} → evidence alone ({','.join(names)})", evaluate_model(ablation, ds, split, "test", (10, 20)))
            )
    result["full_ranking"] = dict(rows)
    if "llm" in args.stages:
        from llm_scorer import LLMScorer, LLMScorerConfig  # beside this script

        rng = np.random.default_rng(args.seed)
        sample = np.sort(rng.choice(users, size=min(args.lm_users, len(users)), replace=False))
        targets = np.array([relevant[u].indices[0] for u in sample])
        cands, retr = candidate_lists(retriever, sample, targets, 20, args.seed)
        seqs = sequences(test_hist)
        scorer = LLMScorer(ds.catalog, LLMScorerConfig(generator=args.lm))
        if args.lora_lists:  # lists of the validation phase (history = training rows): test is never looked at
            valid_rel, _ = phase_matrices(ds, split, "valid")
            vusers = np.flatnonzero(np.diff(valid_rel.indptr) > 0)
            vusers = np.sort(rng.choice(vusers, size=min(args.lora_lists, len(vusers)), replace=False))
            vtargets = np.array([valid_rel[u].indices[0] for u in vusers])
            retriever.set_history(train)
            vc, _ = candidate_lists(retriever, vusers, vtargets, 20, args.seed + 1)
            retriever.set_history(test_hist)
            train_seqs = sequences(train)
            answers = np.array([int(np.flatnonzero(row == t)[0]) for row, t in zip(vc, vtargets)])
            result["lora"] = scorer.finetune([train_seqs[int(u)] for u in vusers], vc, answers, epochs=1,
                                             max_minutes=args.lora_minutes, seed=args.seed)
            logging.info("LoRA: %s", result["lora"])
        t0 = time.perf_counter()
        lm_scores = scorer.score([seqs[int(u)] for u in sample], cands)
        lm_s = (time.perf_counter() - t0) / len(sample)
        result["llm"] = {"users": int(len(sample)), "seconds_per_user": lm_s, "candidates": 20,
                         "retriever_order": list_metrics(target_ranks(retr, cands, targets)),
                         "lm_order": list_metrics(target_ranks(lm_scores, cands, targets)),
                         "random_order": list_metrics(target_ranks(rng.random(cands.shape), cands, targets))}
    con = Console(width=200)
    table = Table(title=f"{ds.name}: ranking stage, {result['rule']}")
    for col in ("model", "NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "users"):
        table.add_column(col, justify="right")
    for label, m in rows:
        table.add_row(
            label,
            f"{m['ndcg@10']:.4f}",
            f"{m['recall@10']:.4f}",
            f"{m['ndcg@20']:.4f}",
            f"{m['recall@20']:.4f}",
            f"{m['users']:.0f}",
        )
    con.print(table)
    if "latency_ratio" in result:
        con.print(
            f"time per user: retriever {1000 * base_s:.2f} ms, retriever → classifier "
            f"{1000 * result['stage_seconds_per_user']:.1f} ms "
            f"({result['latency_ratio']:.1f}×); blend {result['classifier']['blend']}"
        )
    if "llm" in result:
        t = Table(
            title=f"{ds.name}: 20-candidate protocol ({result['llm']['users']} test users; true next item + 19 from "
            f"{name}, shuffled)"
        )
        for col in ("order", "HR@1", "HR@5", "NDCG@10", "MRR"):
            t.add_column(col, justify="right")
        for label in ("random_order", "retriever_order", "lm_order"):
            m = result["llm"][label]
            t.add_row(
                label.replace("_", " "),
                f"{m['hr@1']:.4f}",
                f"{m['hr@5']:.4f}",
                f"{m['ndcg@10']:.4f}",
                f"{m['mrr']:.4f}",
            )
        con.print(t)
        con.print(f"LM: {1000 * result['llm']['seconds_per_user']:.0f} ms per user ({args.lm})")
    out = Path(args.json or ROOT / "results" / f"rerank-{ds.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
