"""Start ``anyrec serve`` on a saved model for a few seconds, send one event, show the list before and after.

    python examples/serve_demo.py --model results/ml-100k-zeroshot --user 196 [--store results/demo.db]

Used by ``make demo``. The same steps by hand::

    anyrec keys create --store results/demo.db            # prints the key last
    anyrec serve --model results/ml-100k-zeroshot --store results/demo.db &
    curl localhost:8000/v1/users/196/recommendations?k=5
    curl -X POST localhost:8000/v1/events -H "Authorization: Bearer KEY" -H 'content-type: application/json' \\
         -d '{"user": "196", "item": "ITEM", "type": "dislike"}'
    curl localhost:8000/v1/users/196/recommendations?k=5
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from anyrec.store import Store


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--user", default="196")
    ap.add_argument("--store", default="results/demo.db")
    args = ap.parse_args()
    console = Console(width=150)
    for old in Path(args.store).parent.glob(Path(args.store).name + "*"):
        old.unlink()  # a fresh store each run: seeded from the model folder on start
    store = Store.open(args.store)
    key = store.create_key("demo")
    store.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "anyrec", "serve", "--model", args.model, "--store", args.store,
                             "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:
            before = c.get(f"/v1/users/{args.user}/recommendations", params={"k": 8, "explain": "true"}).json()
            top = before["items"][0]
            t0 = time.perf_counter()
            c.post("/v1/events", json={"user": args.user, "item": top["id"], "type": "dislike",
                                       "recommendation_id": before["recommendation_id"]}).raise_for_status()
            after = c.get(f"/v1/users/{args.user}/recommendations", params={"k": 8}).json()
            ms = (time.perf_counter() - t0) * 1000
        table = Table(
            title=f"user {args.user}, model {before['model_version']}: dislike of '{top['title']}' → next list "
            f"({ms:.0f} ms later)"
        )
        table.add_column("#", justify="right")
        table.add_column("before")
        table.add_column("because (history items)")
        table.add_column("after the dislike")
        for n in range(8):
            b = before["items"][n]
            a = after["items"][n] if n < len(after["items"]) else {"title": ""}
            table.add_row(str(n + 1), b["title"], ", ".join(x["title"] for x in b["because"][:2]), a["title"])
        console.print(table)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
