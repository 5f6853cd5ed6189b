"""anyrec beside RecBole 1.2.1 on the very same split.

Exports anyrec's split to RecBole's pre-split atomic files (``<name>.train.inter``,
``.valid.inter``, ``.test.inter``, read through ``benchmark_filename``), runs RecBole in its
own virtual environment, evaluates anyrec's counterparts on the same rows, prints one table
and writes JSON.

    python benchmarks/peers.py --dataset ml-100k [--peers Pop,ItemKNN,BPR] [--reuse] [--json OUT]

A peer result is stored in ``benchmarks/peer-results.json`` under a key made of the split files'
SHA-256, the RecBole version, the model and its settings; ``--reuse`` takes a stored result only
for that exact key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from anyrec.data import load_dataset
from anyrec.data.dataset import Dataset
from anyrec.data.split import Split, SplitConfig, make_split
from anyrec.eval.evaluate import evaluate_model
from anyrec.eval.experiment import ExperimentConfig, build_model, run_experiment

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
RECBOLE_VERSION = "1.2.1"

# RecBole model → (anyrec model, anyrec options, RecBole settings). Settings are matched where
# the two implement the same model; BPR differs in implementation (implicit vs RecBole's own).
PAIRS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # RecBole's Pop counts an item once per training batch, and pointwise training would add
    # sampled negatives to its counts: batch size 1 and no negative sampling make it a count.
    "Pop": ("popularity", {}, {"train_batch_size": 1, "train_neg_sample_args": None}),
    "ItemKNN": ("itemknn", {"k": 100, "shrink": 0.0}, {"k": 100, "shrink": 0.0, "train_neg_sample_args": None}),
    "BPR": ("bpr", {}, {}),
    # Sequential peers: cross-entropy over the full catalog, 50 items of history, RecBole's other defaults.
    "SASRec": ("sequential", {}, {"loss_type": "CE", "train_neg_sample_args": None}),
    "GRU4Rec": ("sequential", {}, {"loss_type": "CE", "train_neg_sample_args": None}),
}
SEQUENTIAL = {"SASRec", "GRU4Rec"}
# Agreement required where both sides implement the same model: (recall tolerance, ndcg tolerance).
AGREE = {"Pop": (0.01, 0.03), "ItemKNN": (0.01, 0.03)}


def export_split(ds: Dataset, split: Split, folder: Path) -> str:
    """Write RecBole benchmark files for ``split``; returns their combined SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    inter = ds.interactions
    digest = hashlib.sha256()
    for part, rows in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        lines = ["user_id:token\titem_id:token\ttimestamp:float"]
        users, items = ds.users.raws(inter.user[rows]), ds.catalog.ids.raws(inter.item[rows])
        lines += [f"{u}\t{i}\t{t!r}" for u, i, t in zip(users, items, inter.time[rows].tolist())]
        text = "\n".join(lines) + "\n"
        (folder / f"{folder.name}.{part}.inter").write_text(text, encoding="utf-8")
        digest.update(text.encode())
    return digest.hexdigest()


def export_sequences(ds: Dataset, split: Split, folder: Path, max_len: int = 50) -> str:
    """RecBole's pre-augmented sequential files: one ``user, item_id_list, item_id`` row per target.

    Train rows: every training interaction but a user's first, with up to ``max_len`` earlier
    training items; valid: the training history → the validation item; test: training and
    validation history → the test item. Order is anyrec's time order (ties in file order).
    """
    folder.mkdir(parents=True, exist_ok=True)
    inter = ds.interactions
    raw_u, raw_i = ds.users.raw_ids, ds.catalog.ids.raw_ids
    rows = np.concatenate([split.train, split.valid, split.test])
    phase = np.concatenate([np.zeros(len(split.train), int), np.ones(len(split.valid), int), np.full(len(split.test), 2)])
    order = np.lexsort((rows, inter.time[rows], inter.user[rows]))
    rows, phase = rows[order], phase[order]
    out: dict[int, list[str]] = {0: [], 1: [], 2: []}
    digest = hashlib.sha256()
    start = 0
    users = inter.user[rows]
    while start < len(rows):
        stop = start
        while stop < len(rows) and users[stop] == users[start]:
            stop += 1
        seq: list[str] = []
        for r, ph in zip(rows[start:stop], phase[start:stop]):
            item = raw_i[inter.item[r]]
            if seq:
                out[int(ph)].append(f"{raw_u[users[start]]}\t{' '.join(seq[-max_len:])}\t{item}")
            seq.append(item)
        start = stop
    for ph, part in ((0, "train"), (1, "valid"), (2, "test")):
        text = "user_id:token\titem_id_list:token_seq\titem_id:token\n" + "\n".join(out[ph]) + "\n"
        (folder / f"{folder.name}.{part}.inter").write_text(text, encoding="utf-8")
        digest.update(text.encode())
    return digest.hexdigest()


def run_recbole(python: Path, data_root: Path, name: str, model: str, settings: dict[str, Any], timeout: int,
                sequential: bool = False) -> dict[str, Any]:
    cmd = [str(python), str(HERE / "recbole_runner.py"), "--data-path", str(data_root), "--dataset", name,
           "--model", model, "--config", json.dumps(settings)] + (["--sequential"] if sequential else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=OUT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"RecBole {model} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--format", default=None)
    ap.add_argument("--protocol", default="loo", choices=["loo", "temporal", "ratio"])
    ap.add_argument("--peers", default="Pop,ItemKNN,BPR")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="reuse a stored peer result for the identical split and version")
    ap.add_argument("--recbole-python", default=str(ROOT / ".venv-recbole" / "bin" / "python"))
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--json", default=None)
    ap.add_argument("--peers-only", action="store_true", help="run and store the peers' results, skip anyrec")
    ap.add_argument("--anyrec-models", default="popularity,itemknn,als,bpr,zeroshot,sequential",
                    help="anyrec models for the leaderboard (anyrec's protocol: train+valid history at test)")
    ap.add_argument("--option", action="append", default=[], help="anyrec model option MODEL.FIELD=VALUE")
    args = ap.parse_args()
    console = Console(width=200)

    ds = load_dataset(args.dataset, fmt=args.format)
    split = make_split(ds, SplitConfig(protocol=args.protocol, seed=args.seed))
    name = "".join(ch if ch.isalnum() else "_" for ch in ds.name)
    data_root = OUT / "recbole-data"
    split_hash = export_split(ds, split, data_root / name)
    seq_root = OUT / "recbole-seq-data"
    seq_hash = export_sequences(ds, split, seq_root / name)
    console.print(f"{ds.name}: split {args.protocol} exported to {data_root / name} (sha256 {split_hash[:12]}) "
                  f"and, as sequences, to {seq_root / name} (sha256 {seq_hash[:12]})")
    # Peer results are measurements worth keeping: they live in the repository, keyed so that a
    # stored result is reused only for the identical split files and RecBole version.
    cache_path = HERE / "peer-results.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    legacy = OUT / "peer-cache.json"
    if legacy.exists():
        cache = {**json.loads(legacy.read_text()), **cache}

    train = split.train_dataset(ds)
    rows = []
    for peer in [p.strip() for p in args.peers.split(",") if p.strip()]:
        ours, our_opts, settings = PAIRS[peer]
        seq = peer in SEQUENTIAL
        key = f"{seq_hash if seq else split_hash}:{RECBOLE_VERSION}:{peer}:{json.dumps(settings, sort_keys=True)}"
        if args.reuse and key in cache:
            theirs = cache[key]
            source = "stored"
        else:
            console.print(f"running RecBole {peer} …")
            theirs = run_recbole(Path(args.recbole_python), seq_root if seq else data_root, name, peer, settings,
                                 args.timeout, sequential=seq)
            cache[key] = theirs
            cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
            source = "run"
            console.print(f"RecBole {peer}: {json.dumps(theirs['test'])} in {theirs['fit_seconds']} s")
        if args.peers_only or seq:
            rows.append({"peer": peer, "recbole": theirs, "recbole_source": source, "recbole_settings": settings, "sequential": seq})
            continue
        model = build_model(ours, args.seed, our_opts)
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        mine = evaluate_model(model, ds, split, "test", (10, 20))
        optimistic = evaluate_model(model, ds, split, "test", (10, 20), ties="optimistic")
        recbole_masking = evaluate_model(model, ds, split, "test", (10, 20), unmask_targets=True)
        rows.append({"peer": peer, "anyrec_model": ours, "anyrec_options": our_opts, "recbole_settings": settings,
                     "recbole": theirs, "recbole_source": source, "anyrec": {**mine, "fit_seconds": round(fit_s, 3)},
                     "anyrec_optimistic_ties": optimistic, "anyrec_recbole_masking": recbole_masking})

    if args.peers_only:
        return 0
    general = [r for r in rows if not r.get("sequential")]
    table = Table(title=f"anyrec vs RecBole {RECBOLE_VERSION} · {ds.name} · {args.protocol} · same split files")
    for col in ("peer", "RecBole R@10", "anyrec R@10", "ΔR", "RecBole N@10", "anyrec N@10", "ΔN",
                "anyrec N@10 (optimistic ties)", "anyrec R@10 / N@10 (RecBole's masking)", "RecBole MRR@10", "anyrec MRR@10", "fit s (RB / ours)", "agree"):
        table.add_column(col, justify="right")
    ok = True
    for r in general:
        rb, me, opt = r["recbole"]["test"], r["anyrec"], r["anyrec_optimistic_ties"]
        dr = (me["recall@10"] - rb["recall@10"]) / rb["recall@10"]
        dn = (me["ndcg@10"] - rb["ndcg@10"]) / rb["ndcg@10"]
        verdict = "–"
        if r["peer"] in AGREE:
            tol_r, tol_n = AGREE[r["peer"]]
            good = abs(dr) <= tol_r and abs(dn) <= tol_n
            ok &= good
            verdict = f"[green]yes[/] (≤{tol_r:.0%}, ≤{tol_n:.0%})" if good else f"[red]NO[/] (≤{tol_r:.0%}, ≤{tol_n:.0%})"
            r["agree"] = good
        table.add_row(r["peer"], f"{rb['recall@10']:.4f}", f"{me['recall@10']:.4f}", f"{dr:+.1%}", f"{rb['ndcg@10']:.4f}",
                      f"{me['ndcg@10']:.4f}", f"{dn:+.1%}", f"{opt['ndcg@10']:.4f}",
                      f"{r['anyrec_recbole_masking']['recall@10']:.4f} / {r['anyrec_recbole_masking']['ndcg@10']:.4f}",
                      f"{rb['mrr@10']:.4f}", f"{me['mrr@10']:.4f}",
                      f"{r['recbole']['fit_seconds']:.1f} / {me['fit_seconds']:.2f} ({r['recbole_source']})", verdict)
    console.print(table)
    console.print("RecBole rounds its metrics to 4 decimals. anyrec ranks held-out items last among equal scores; "
                  "the optimistic column shows how far ties alone can move NDCG. RecBole masks a user's history minus "
                  "the held-out items, so a repeat purchase is rankable; anyrec masks the whole history (the RecBole's "
                  "masking column reproduces RecBole's rule).")
    leaderboard = build_leaderboard(console, ds, split, rows, args)
    result = {"dataset": ds.name, "protocol": args.protocol, "split_sha256": split_hash, "sequences_sha256": seq_hash,
              "recbole_version": RECBOLE_VERSION, "rows": rows, "all_agree": ok, "leaderboard": leaderboard}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0 if ok else 1


def build_leaderboard(console: Console, ds: Dataset, split: Split, rows: list[dict[str, Any]], args: Any) -> dict[str, Any]:
    """One table: every RecBole peer and every anyrec model on the same split, with ratios to the best peer."""
    from anyrec.cli.common import parse_options
    from anyrec.cli.evaluate import with_text_defaults

    models = tuple(m for m in args.anyrec_models.split(",") if m)
    opts = {m: with_text_defaults(m, parse_options(tuple(args.option)).get(m, {}), None, False) for m in models}
    res = run_experiment(ds, ExperimentConfig(models=models, ks=(10, 20), seed=args.seed, model_options=opts), split=split)
    peers = {r["peer"]: r["recbole"] for r in rows}
    best_peer = max(peers, key=lambda p: peers[p]["test"]["ndcg@10"]) if peers else None
    best = peers[best_peer]["test"]["ndcg@10"] if best_peer else float("nan")
    table = Table(title=f"{ds.name} · {args.protocol} · same split · RecBole {RECBOLE_VERSION} peers and anyrec")
    for col in ("library", "model", "history at test", "NDCG@10", "Recall@10", "MRR@10", "fit s", f"÷ best peer ({best_peer})"):
        table.add_column(col, justify="right")
    board: dict[str, Any] = {"best_peer": best_peer, "peers": {}, "anyrec": {}, "tuned": res.get("tuned", {})}
    for name, r in peers.items():
        t = r["test"]
        hist = "train+valid" if name in SEQUENTIAL else "train"
        table.add_row("RecBole", name, hist, f"{t['ndcg@10']:.4f}", f"{t['recall@10']:.4f}", f"{t['mrr@10']:.4f}",
                      f"{r['fit_seconds']:.0f}", f"{t['ndcg@10'] / best:.2f}")
        board["peers"][name] = {"ndcg@10": t["ndcg@10"], "recall@10": t["recall@10"], "mrr@10": t["mrr@10"],
                                "fit_seconds": r["fit_seconds"], "epochs": r.get("epochs")}
    for name, m in res["models"].items():
        ratio = m["ndcg@10"] / best if best_peer else float("nan")
        table.add_row("anyrec", name, "train+valid", f"{m['ndcg@10']:.4f}", f"{m['recall@10']:.4f}", f"{m['mrr@10']:.4f}",
                      f"{m['fit_seconds']:.0f}", f"[bold]{ratio:.2f}[/]" if name == "sequential" else f"{ratio:.2f}")
        board["anyrec"][name] = {**{k: m[k] for k in ("ndcg@10", "recall@10", "mrr@10", "fit_seconds")}, "ratio_to_best_peer": ratio}
    console.print(table)
    if "SASRec" in peers and "sequential" in res["models"]:
        sas = peers["SASRec"]
        seq = res["models"]["sequential"]
        console.print(f"sequential ÷ SASRec: NDCG@10 {seq['ndcg@10'] / sas['test']['ndcg@10']:.2f} (target ≥ 1.10); "
                      f"fit time {seq['fit_seconds'] / sas['fit_seconds']:.2f} (aim ≤ 1.0)")
        board["sequential_vs_sasrec"] = {"ndcg_ratio": seq["ndcg@10"] / sas["test"]["ndcg@10"],
                                         "fit_time_ratio": seq["fit_seconds"] / sas["fit_seconds"]}
    return board


if __name__ == "__main__":
    sys.exit(main())
