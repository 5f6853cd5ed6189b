"""The live loop as a person meets it, through the HTTP API: one dislike, one like, the reasons on each card.

For each code version (``--before REF``: a git ref, checked out into a worktree and run from it;
``after``: this checkout), the served default is fitted the way ``make demo`` fits it
(``anyrec fit --model zeroshot --dataset ml-100k``), served by the real server process on a fresh
SQLite store seeded from the model folder, and for ``--users`` users with at least 20 events
(seeded sample, the same users for every version):

- **dislike**: list 10 (and 1000, for ranks), dislike the top item, list again. Reported: the
  median number of the other 9 still in the top 10; the share of users for whom the disliked
  item's 3 nearest unseen items by text are all *lower* (more of the items other than the
  disliked one and those 3 are above each of them than before);
- **like**: on a copy of the user (their history posted under a new id), like the 5th item.
  Reported: the median overlap of the two top-10 lists; the share of users whose liked item's
  nearest unseen item by text rose (fewer other items above it);
- **reasons**: the share of cards 2–10 whose cited set differs from card 1's (median over users),
  and the cards citing an item the user rated ≤ 2 or disliked (before and after the dislike);
- **offline**: leave-one-out NDCG@10 of the version's served configuration (``anyrec evaluate``
  with the options ``anyrec fit`` chose: ``--stability`` on the new code) beside the accuracy-only one.

    python benchmarks/live.py [--before 4bf0d4c] [--users 300] [--json benchmarks/out/live.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=160)


def log(msg: str) -> None:
    console.print(f"[{time.strftime('%H:%M:%S')}] {msg}")


def source(ref: str | None, work: Path) -> Path:
    """The ``src`` folder of ``ref`` (a worktree under ``work``), or this checkout's."""
    if ref is None:
        return ROOT / "src"
    tree = work / f"tree-{ref}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref], check=True,
                       capture_output=True)
    return tree / "src"


def run(src: Path, args: list[str], what: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    log(f"{what}: {time.perf_counter() - t0:.0f} s")
    return done.stdout


def offline(src: Path, out: Path, stability: bool) -> float:
    """Leave-one-out test NDCG@10 of zero-shot on ml-100k, tuned as given."""
    path = out / f"offline-{'stable' if stability else 'accuracy'}.json"
    run(
        src,
        [
            "-m",
            "anyrec",
            "evaluate",
            "--dataset",
            "ml-100k",
            "--protocol",
            "loo",
            "--models",
            "zeroshot",
            "--k",
            "10",
            "--json",
            str(path),
            "--no-progress",
            *(["--stability"] if stability else []),
        ],
        f"evaluate ({'served configuration' if stability else 'accuracy only'})",
    )
    return float(json.loads(path.read_text())["models"]["zeroshot"]["ndcg@10"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def text_table(src: Path, folder: Path, out: Path) -> tuple[np.ndarray, list[str]]:
    """The model folder's unit item vectors and raw ids (the neighbours the bars name), read by the
    version's own code (both versions encode the same catalog with the same MiniLM encoder)."""
    code = ("import json, numpy as np; from anyrec.app.persist import load_model; "
            f"m, ds, _i, _m = load_model({str(folder)!r}); np.save({str(out / 'vectors.npy')!r}, m.text_table()); "
            f"open({str(out / 'ids.json')!r}, 'w').write(json.dumps(list(ds.catalog.ids.raws(np.arange(ds.n_items)))))")
    run(src, ["-c", code], "the catalog's text vectors")
    return np.load(out / "vectors.npy"), list(json.loads((out / "ids.json").read_text()))


def others_above(ranked: list[str], item: str, skip: set[str]) -> int:
    """How many listed items other than ``skip`` are above ``item`` (all of them when it is not listed)."""
    others = 0
    for r in ranked:
        if r == item:
            return others
        if r not in skip:
            others += 1
    return others + 1


def nearest(table: np.ndarray, ids: list[str], index: dict[str, int], item: str, unseen: set[str], n: int) -> list[str]:
    cos = table @ table[index[item]]
    order = np.argsort(-cos, kind="stable")
    return [ids[j] for j in order if ids[j] != item and ids[j] in unseen][:n]


def measure(side: str, src: Path, work: Path, users: int, seed: int) -> dict[str, Any]:
    out = work / side
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "model"
    if not (folder / "model.json").exists():
        run(
            src,
            ["-m", "anyrec", "fit", "--model", "zeroshot", "--dataset", "ml-100k", "--out", str(folder)],
            f"{side}: fit the served default",
        )
    chosen = json.loads((folder / "model.json").read_text()).get("tuned", {})
    table, ids = text_table(src, folder, out)
    index = {r: j for j, r in enumerate(ids)}
    db = out / "live.db"
    for old in out.glob("live.db*"):
        old.unlink()
    key = (
        run(
            src,
            [
                "-c",
                f"from anyrec.store import Store; s = Store.open({str(db)!r}); print(s.create_key('bench')); s.close()",
            ],
            f"{side}: a key",
        )
        .strip()
        .splitlines()[-1]
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    server_log = open(out / "server.log", "w")  # noqa: SIM115 (open for the server's life)
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyrec", "serve", "--model", str(folder), "--store", str(db), "--port", str(port)],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        else:
            raise SystemExit(f"{side}: the server did not start (see {out / 'server.log'})")
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}) as c:
            return {"options": chosen, **drive(c, side, table, ids, index, users, seed)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        server_log.close()


def drive(
    c: httpx.Client, side: str, table: np.ndarray, ids: list[str], index: dict[str, int], n_users: int, seed: int
) -> dict[str, Any]:
    def recs(user: str, k: int, explain: bool = False) -> list[dict[str, Any]]:
        r = c.get(f"/v1/users/{user}/recommendations", params={"k": k, "explain": str(explain).lower()})
        r.raise_for_status()
        return list(r.json()["items"])

    everyone = sorted(c.get("/v1/users", params={"limit": 1000}).json()["users"], key=lambda u: str(u["id"]))
    eligible = [str(u["id"]) for u in everyone if int(u.get("events", 0)) >= 20]
    chosen = [eligible[j] for j in np.random.default_rng(seed).permutation(len(eligible))[:n_users]]
    kept, near_lower, overlap, like_near_up, differs, bad_cites, cards = [], [], [], [], [], 0, 0
    t0 = last = time.perf_counter()
    for n, user in enumerate(chosen):
        history = c.get(f"/v1/users/{user}/history", params={"limit": 1000}).json()["events"]
        seen = {e["item"] for e in history}
        low = {
            e["item"]
            for e in history
            if (e["type"] == "rating" or e["value"] is not None) and e["value"] is not None and float(e["value"]) <= 2
        }
        unseen = {r for r in ids if r not in seen}
        top10 = recs(user, 10, explain=True)
        first = {b["id"] for b in top10[0]["because"]}
        differs.append(float(np.mean([{b["id"] for b in card["because"]} != first for card in top10[1:]])))
        cards += len(top10)
        bad_cites += sum(1 for card in top10 for b in card["because"] if b["id"] in low)
        long_before = [x["id"] for x in recs(user, 1000)]
        # one dislike of the top item
        gone = top10[0]["id"]
        c.post("/v1/events", json={"user": user, "item": gone, "type": "dislike"}).raise_for_status()
        after10 = recs(user, 10, explain=True)
        long_after = [x["id"] for x in recs(user, 1000)]
        kept.append(len({x["id"] for x in top10[1:]} & {x["id"] for x in after10}))
        kin = nearest(table, ids, index, gone, unseen - {gone}, 3)
        skip = {gone, *kin}
        near_lower.append(all(others_above(long_after, m, skip) > others_above(long_before, m, skip) for m in kin))
        cards += len(after10)
        bad_cites += sum(1 for card in after10 for b in card["because"] if b["id"] in low | {gone})
        # one like of the 5th item, on a copy of the user
        twin = f"{user}~like"
        c.post(
            "/v1/events",
            json=[
                {"user": twin, "item": e["item"], "type": e["type"], "value": e["value"], "time": e["time"]}
                for e in history[::-1]
            ],
        ).raise_for_status()
        twin_before = [x["id"] for x in recs(twin, 1000)]
        liked = twin_before[4]
        c.post("/v1/events", json={"user": twin, "item": liked, "type": "like"}).raise_for_status()
        twin_after = [x["id"] for x in recs(twin, 1000)]
        overlap.append(len(set(twin_before[:10]) & set(twin_after[:10])))
        kin1 = nearest(table, ids, index, liked, unseen - {liked}, 1)[0]
        like_near_up.append(
            others_above(twin_after, kin1, {liked, kin1}) < others_above(twin_before, kin1, {liked, kin1})
        )
        if time.perf_counter() - last > 20:
            last = time.perf_counter()
            log(f"{side}: {n + 1}/{len(chosen)} users, {last - t0:.0f} s")
    return {
        "users": len(chosen),
        "dislike_kept_median": float(np.median(kept)),
        "dislike_near_lower_share": float(np.mean(near_lower)),
        "like_overlap_median": float(np.median(overlap)),
        "like_near_up_share": float(np.mean(like_near_up)),
        "cards_differ_share_median": float(np.median(differs)),
        "cards": cards,
        "cards_citing_low_or_disliked": bad_cites,
    }


ROWS = [
    ("after one dislike: median of the other 9 kept", "dislike_kept_median", "≥ 7", lambda v: v >= 7, "{:.1f}"),
    (
        "  its 3 nearest by text lower (share of users)",
        "dislike_near_lower_share",
        "≥ 90 %",
        lambda v: v >= 0.9,
        "{:.1%}",
    ),
    ("after one like: median top-10 overlap", "like_overlap_median", "≥ 6", lambda v: v >= 6, "{:.1f}"),
    ("  its nearest unseen by text higher (share)", "like_near_up_share", "≥ 80 %", lambda v: v >= 0.8, "{:.1%}"),
    (
        "cards citing other items than card 1 (median)",
        "cards_differ_share_median",
        "≥ 50 %",
        lambda v: v >= 0.5,
        "{:.1%}",
    ),
    ("cards citing an item rated ≤ 2 or disliked", "cards_citing_low_or_disliked", "0", lambda v: v == 0, "{:.0f}"),
    ("offline loo NDCG@10, served configuration", "offline_served", "", None, "{:.4f}"),
    ("offline loo NDCG@10, accuracy only", "offline_accuracy", "", None, "{:.4f}"),
    ("price of stability (served ÷ accuracy only)", "stability_price", "≥ 0.95", lambda v: v >= 0.95, "{:.3f}"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default=None, help="A git ref whose code is the 'before' column (run from a worktree).")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="Work folder (default: a new temporary one).")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "out" / "live.json"))
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="anyrec-live-"))
    sides = ([("before", source(args.before, work))] if args.before else []) + [("after", source(None, work))]
    results: dict[str, Any] = {"before_ref": args.before, "users": args.users}
    for side, src in sides:
        log(f"{side}: code from {src}")
        found = measure(side, src, work, args.users, args.seed)
        # "Served configuration": what the version's fit chose. The old code had no stability check: its
        # served configuration is its accuracy-only one.
        new_code = side == "after"
        found["offline_accuracy"] = offline(src, work / side, stability=False)
        found["offline_served"] = offline(src, work / side, stability=True) if new_code else found["offline_accuracy"]
        found["stability_price"] = found["offline_served"] / found["offline_accuracy"]
        results[side] = found
    table = Table(
        title=f"The live loop through the HTTP API: ml-100k, served default (zeroshot), {args.users} users with ≥ 20 "
        "events"
    )
    table.add_column("measure")
    for side, _ in sides:
        table.add_column(side + (f" ({args.before})" if side == "before" else ""), justify="right")
    table.add_column("bar", justify="right")
    for label, key, bar, ok, fmt in ROWS:
        cells = [fmt.format(results[side][key]) for side, _ in sides]
        if ok is not None:
            cells[-1] += " ✓" if ok(results["after"][key]) else " ✗"
        table.add_row(label, *cells, bar)
    console.print(table)
    for side, _ in sides:
        console.print(f"{side}: options chosen on validation: {results[side]['options']}")
    if args.before:  # the worktree goes; its fitted folders stay in the work folder
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / f"tree-{args.before}")],
                       check=False, capture_output=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
