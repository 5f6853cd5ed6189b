"""Service fixtures: a zero-shot model on a catalog of three obvious topics, a temporary store, a key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from anyrec.app.persist import save_model
from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.models.zeroshot import ZeroShot, ZeroShotConfig
from anyrec.store import Store

TOPICS = {
    "space": "space rocket robot galaxy astronaut orbit",
    "love": "romance love wedding kiss heart couple",
    "ghost": "horror ghost haunted scream night fear",
}


def topic_dataset(per_topic: int = 12, users: int = 30, length: int = 4) -> Dataset:
    """Items s0.., l0.., g0.. whose texts share their topic's words; user uN watches ``length`` items of topic N % 3."""
    builder = DatasetBuilder(ReadPolicy(), fields=["title", "genres"])
    names = list(TOPICS)
    for t in names:
        for n in range(per_topic):
            words = TOPICS[t].split()
            builder.add_item(f"{t[0]}{n}", {"title": f"{t.title()} story {n}", "genres": t,
                                            "text": " ".join(words[(n + j) % len(words)] for j in range(4))},
                             path="items", line=1, field="id")
    row = 2
    for u in range(users):
        t = names[u % 3]
        for n in range(u % 5, u % 5 + length):
            builder.add_interaction(f"u{u}", f"{t[0]}{n % per_topic}", time=float(row), path="inter", line=row)
            row += 1
    return builder.build("topics", template="{title}. {genres}. {text}", category_field="genres")


@pytest.fixture(scope="session")
def topics() -> Dataset:
    return topic_dataset()


@pytest.fixture(scope="session")
def zeroshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = topic_dataset()
    model = ZeroShot(ZeroShotConfig(encoder="hashing:128")).fit(ds)
    return save_model(model, ds, tmp_path_factory.mktemp("model") / "zeroshot")


@pytest.fixture
def api_key(store_url: str) -> str:
    store = Store.open(store_url)
    key = store.create_key("tests")
    store.close()
    return key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Launch = Callable[..., tuple[str, subprocess.Popen, int]]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start ``anyrec serve`` as a real process: ``launch(store_url, model_dir=None, port=None, *extra)``."""
    procs: list[subprocess.Popen] = []
    log = tmp_path / "server.log"

    def start(
        store_url: str, model_dir: Path | None = None, port: int | None = None, *extra: str
    ) -> tuple[str, subprocess.Popen, int]:
        port = port or free_port()
        cmd = [sys.executable, "-m", "anyrec", "serve", "--store", store_url, "--port", str(port), *extra]
        if model_dir is not None:
            cmd += ["--model", str(model_dir)]
        proc = subprocess.Popen(
            cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        procs.append(proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    return f"http://127.0.0.1:{port}", proc, port
            except httpx.TransportError:
                time.sleep(0.1)
        proc.kill()
        raise AssertionError(f"server did not answer in 120 s: {log.read_text()[-2000:]}")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
