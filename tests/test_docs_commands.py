"""Every command the README and docs/ show is run, so none of them drifts from the program (issue 34).

The commands are read from the fenced blocks of README.md and docs/*.md and run in the order written, each page in
a workspace of its own, on stand-ins for the data they name (the only changes made to them):

- ``ml-100k``: a slice of MovieLens-100K (user 196 and 59 others, their first 12 ratings, in RecBole's files);
  any other catalog folder under ``../shared/data``: the same slice under that name; any TOML file: the slice as
  CSV tables with a column mapping; the MIND folder: a small MIND sample (impressions) made from the slice;
  ``shop.toml``: a catalog with generated pictures, and the CLIP hub names: a tiny CLIP folder (no network here);
- a PostgreSQL URL: a SQLite file; a Ray cluster address (``auto``, ``ray://…``): a local cluster (``--ray``);
- the training budgets of the commands that train a language model (``pretrain-encoder``, ``pretrain-rec``,
  ``zeroshot.tune_encoder``, the click classifier of ``--ranker classifier`` and ``fit-ranker``, the generative
  model's ``fit``): 0.2 minutes (set, or lowered from the page's 2 to 30);
- ``anyrec serve`` runs in a process of its own on a free port until the page's next server, and ``curl`` talks to
  it (``localhost:8000`` → that port, ``$KEY`` → the key ``anyrec keys create`` printed);
- ``make X``: the Makefile's target resolves (``make -n``; ``make demo`` and ``make test`` are what the project runs
  and what CI runs); ``pip install 'anyrec[ray]'``: the extra is declared; ``ray start``: Ray's own command, not run.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from anyrec.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("anyrec", "make", "curl", "pip", "ray")
SHELL = ("", "bash", "sh", "shell")  # the fences whose lines are commands
BUDGET = 0.2  # minutes of language-model training a command here may spend


def documented_commands(page: Path) -> list[str]:
    """The shell commands of ``page``'s fenced blocks: continuation lines joined, trailing comments dropped."""
    blocks: list[list[str]] = []
    lang: str | None = None  # the open fence's language, None outside a block
    for line in page.read_text(encoding="utf-8").splitlines():
        fence = re.match(r"\s*```(\w*)\s*$", line)
        if fence and lang is None:
            lang = fence.group(1)
            if lang in SHELL:
                blocks.append([])
        elif fence:
            lang = None
        elif lang in SHELL:
            blocks[-1].append(line)
    commands: list[str] = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", "\n".join(block))
        for line in joined.splitlines():
            line = re.sub(r"\s{2,}#.*$", "", line.strip())
            if line.split(" ", 1)[0] in PROGRAMS:
                commands.append(line)
    return commands


def test_the_pages_hold_commands() -> None:
    found = {p.name: len(documented_commands(p)) for p in PAGES}
    assert found["README.md"] >= 12 and found["serving.md"] >= 10 and found["models.md"] >= 15, found


# ---- stand-ins ---------------------------------------------------------------------------------------------------


def _ml_slice(out: Path, users: int = 60, per_user: int = 12) -> dict[str, Any]:
    from anyrec.data.load import NAMED

    src = Path(NAMED["ml-100k"].resolve())
    rows = list(csv.reader((src / "ml-100k.inter").open(encoding="utf-8"), delimiter="\t"))
    head, body = rows[0], rows[1:]
    by_user: dict[str, list[list[str]]] = {}
    for r in body:
        by_user.setdefault(r[0], []).append(r)
    keep = ["196", *[u for u in sorted(by_user, key=int) if u != "196"][: users - 1]]
    kept = [r for u in keep for r in sorted(by_user[u], key=lambda r: float(r[3]))[:per_user]]
    kept += [r for r in by_user["196"] if r[1] in ("50", "204") and r not in kept]
    items = {r[1] for r in kept} | {"50", "204"}
    item_rows = list(csv.reader((src / "ml-100k.item").open(encoding="latin-1"), delimiter="\t"))
    out.mkdir(parents=True)
    with (out / "ml-100k.inter").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", lineterminator="\n").writerows([head, *kept])
    catalog = [item_rows[0], *[r for r in item_rows[1:] if r[0] in items]]
    with (out / "ml-100k.item").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter="\t", lineterminator="\n").writerows(catalog)
    return {"events": kept, "items": catalog[1:]}


def _table(out: Path, ml: dict[str, Any]) -> Path:
    out.mkdir(parents=True)
    with (out / "items.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["item_id", "title", "genres"], *[[r[0], r[1], r[3]] for r in ml["items"]]])
    with (out / "interactions.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["user_id", "item_id", "time"], *[[r[0], r[1], r[3]] for r in ml["events"]]])
    (out / "anyrec.toml").write_text(
        '[data]\nitems = "items.csv"\nitem_id = "item_id"\ntext = ["title", "genres"]\n'
        'interactions = "interactions.csv"\nuser = "user_id"\nitem = "item_id"\ntime = "time"\n',
        encoding="utf-8",
    )
    return out / "anyrec.toml"


def _mind(out: Path, ml: dict[str, Any]) -> None:
    """news.tsv from the slice's films; per user, impressions of 5 films with one clicked, after a history."""
    out.mkdir(parents=True)
    ids = [r[0] for r in ml["items"]]
    with (out / "news.tsv").open("w", encoding="utf-8") as f:
        for r in ml["items"]:
            f.write(f"N{r[0]}\tfilms\t{(r[3] or 'film').split()[0].lower()}\t{r[1]}\t{r[1]}, {r[2]}\t\t[]\t[]\n")
    by_user: dict[str, list[str]] = {}
    for r in ml["events"]:
        by_user.setdefault(r[0], []).append(r[1])
    n = 0
    with (out / "behaviors.tsv").open("w", encoding="utf-8") as f:
        for user, seen in by_user.items():
            for k in range(4, min(len(seen), 10)):
                others = [i for i in ids[(n * 7) % len(ids) :] + ids if i not in seen][:4]
                shown = " ".join([f"N{seen[k]}-1", *[f"N{i}-0" for i in others]])
                n += 1
                f.write(f"{n}\tU{user}\t11/{1 + n // 200}/2019 {1 + n % 11}:{n % 60:02d}:00 AM\t"
                        f"{' '.join('N' + i for i in seen[:k])}\t{shown}\n")


def _pictures(out: Path) -> tuple[Path, Path]:
    spec = importlib.util.spec_from_file_location("pictures_benchmark", ROOT / "benchmarks" / "pictures.py")
    assert spec is not None and spec.loader is not None
    pics = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pics)
    made = pics.make_catalog(out, items=60, users=80, broken=0.0, seed=2)
    pics.train_clip(out / "clip", made["paths"], made["captions"], minutes=0.1, epochs=2, batch=32)
    return out / "anyrec.toml", out / "clip"


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("stand-ins")
    ml = _ml_slice(root / "ml-100k")
    for name in ("amazon-scientific", "ml-latest-small"):
        shutil.copytree(root / "ml-100k", root / name)
    shop, clip = _pictures(root / "shop")
    _mind(root / "mind-small-subset", ml)
    return {
        "ml-100k": str(root / "ml-100k"),
        "folder": str(root),
        "toml": str(_table(root / "table", ml)),
        "shop": str(shop),
        "clip": str(clip),
    }


def _table_named(path: str, data: dict[str, str]) -> str:
    """The table stand-in for a TOML path, under the name the path gives its dataset (its folder's, else its own)."""
    name = Path(path).parent.name or Path(path).stem
    folder = Path(data["folder"]) / f"table-{name}"
    if not folder.exists():
        shutil.copytree(Path(data["toml"]).parent, folder)
    return str(folder / "anyrec.toml")


def _substituted(command: str, data: dict[str, str], work: Path) -> str:
    c = re.sub(r"--config shop\.toml", f"--config {data['shop']}", command)
    c = re.sub(r"--image-encoder \S+", f"--image-encoder {data['clip']}", c)
    c = re.sub(r"(?<=\s)(\.\./shared/data/\S+\.toml|[\w-]+\.toml)(?=\s|$)", lambda m: _table_named(m.group(1), data), c)
    c = re.sub(r"\.\./shared/data/([\w-]+)", lambda m: f"{data['folder']}/{m.group(1)}", c)
    c = re.sub(r"(?<=--dataset )ml-100k\b|(?<=--source )ml-100k\b", data["ml-100k"], c)
    c = re.sub(r"postgresql://\S+", f"sqlite:///{work / 'imported.db'}", c)
    c = re.sub(r"--ray (auto|ray://\S+)", "--ray", c)
    c = re.sub(r"tune_encoder=[\d.]+", f"tune_encoder={BUDGET}", c)
    if c.startswith(("anyrec pretrain-encoder", "anyrec pretrain-rec")):
        c = re.sub(r" --max-minutes [\d.]+", "", c) + f" --max-minutes {BUDGET}"
    if c.startswith("anyrec fit --model generative"):
        c += f" --max-minutes {BUDGET}"
    if "--ranker classifier" in c or c.startswith("anyrec fit-ranker"):
        c += f" --option ranker.max_minutes={BUDGET}"
    return c


# ---- running a page ----------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Page:
    """Runs one page's commands in order in ``work``: the CLI in process, ``serve`` in a process of its own."""

    def __init__(self, work: Path, data: dict[str, str]) -> None:
        self.work, self.data = work, data
        self.server: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.key = ""
        self.ran: list[str] = []

    def run(self, command: str) -> None:
        program = command.split(" ", 1)[0]
        t0 = time.perf_counter()
        getattr(self, f"_{program}")(command)
        self.ran.append(command)
        print(f"{time.perf_counter() - t0:6.1f} s  {command}")

    def _make(self, command: str) -> None:
        target = command.split()[1]
        done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stderr)

    def _pip(self, command: str) -> None:
        extra = re.search(r"anyrec\[(\w+)\]", command)
        assert extra is not None
        meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        assert extra.group(1) in meta["project"]["optional-dependencies"], command

    def _ray(self, command: str) -> None:
        assert command.startswith("ray start")  # Ray's own command (a cluster of the user's machines): not run here

    def _anyrec(self, command: str) -> None:
        args = shlex.split(_substituted(command, self.data, self.work))[1:]
        if args[0] == "serve":
            self._serve(args)
            return
        old = Path.cwd()
        os.chdir(self.work)
        try:
            result = CliRunner().invoke(cli, args, catch_exceptions=False)
        finally:
            os.chdir(old)
        assert result.exit_code == 0, (command, result.output[-3000:])
        if args[:2] == ["keys", "create"]:
            self.key = result.output.split()[-1]

    def _serve(self, args: list[str]) -> None:
        self.stop()
        self.port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-m", "anyrec", *args, "--port", str(self.port)]
        self.server = subprocess.Popen(cmd, cwd=self.work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 180
        while time.time() < deadline:
            assert self.server.poll() is None, (args, self.server.stderr.read().decode()[-3000:])  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"{args}: no answer from /v1/health in 180 s")

    def _curl(self, command: str) -> None:
        assert self.server is not None, f"{command}: no server started on this page"
        c = command.replace("localhost:8000", f"127.0.0.1:{self.port}")
        env = {**os.environ, "KEY": self.key}
        done = subprocess.run(
            ["bash", "-c", f"{c} -sS -w '\\n%{{http_code}}'"], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, (command, done.stderr)
        status = int(done.stdout.rsplit("\n", 1)[-1])
        # promote answers 409 while the experiment has no significant winner yet (a page's few requests)
        assert status == 200 or (status == 409 and "/promote" in c), (command, done.stdout[-2000:])

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None


@pytest.mark.parametrize("page", [p for p in PAGES if documented_commands(p)], ids=lambda p: p.name)
def test_every_command_on_the_page_runs(page: Path, stand_ins: dict[str, str], tmp_path: Path) -> None:
    commands = documented_commands(page)
    if page.name == "serving.md":  # the folder its first lines serve is the one `make demo` fits
        (tmp_path / "results").mkdir()
        commands = ["anyrec fit --model zeroshot --dataset ml-100k --out results/ml-100k-zeroshot", *commands]
    runner = Page(tmp_path, stand_ins)
    try:
        for command in commands:
            runner.run(command)
    finally:
        runner.stop()
    assert len(runner.ran) == len(commands)
