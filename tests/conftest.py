"""Shared fixtures: tiny synthetic datasets whose right answers are obvious."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from anyrec.data.builder import DatasetBuilder, ReadPolicy
from anyrec.data.dataset import Dataset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_dataset(pairs: list[tuple[str, str]], items: list[str] | None = None, *, ratings: list[float] | None = None,
                 times: list[float] | None = None, name: str = "toy") -> Dataset:
    """A dataset from ``(user, item)`` pairs; items get a title field equal to their id."""
    builder = DatasetBuilder(ReadPolicy(), fields=["title", "genres"])
    for item in items or sorted({i for _, i in pairs}):
        builder.add_item(item, {"title": f"Item {item}", "genres": "odd" if int(item.strip("i") or 0) % 2 else "even"},
                         path="items", line=1, field="id")
    for n, (u, i) in enumerate(pairs):
        builder.add_interaction(u, i, time=times[n] if times else float(n), rating=ratings[n] if ratings else None,
                                path="inter", line=n + 2)
    return builder.build(name, template="{title}. Genres: {genres}", category_field="genres")


def checkerboard(n_users: int = 40, n_items: int = 20, per_user: int = 6, seed: int = 0) -> Dataset:
    """Two blocks: even users only touch items 0..n/2-1, odd users only n/2..n-1."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    pairs = []
    for u in range(n_users):
        block = range(0, half) if u % 2 == 0 else range(half, n_items)
        for i in rng.choice(list(block), size=per_user, replace=False):
            pairs.append((f"u{u}", f"i{i}"))
    return make_dataset(pairs, items=[f"i{i}" for i in range(n_items)])


@pytest.fixture
def board() -> Dataset:
    return checkerboard()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


PG_URL = os.environ.get("ANYREC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_url() -> str | None:
    """A fresh schema in the local PostgreSQL test database, or None when no server answers."""
    try:
        import psycopg
    except ImportError:
        return None
    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(plain, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError:
        return None
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'anyrec.db'}"
        return
    url = postgres_url()
    if url is None:
        pytest.skip(f"no PostgreSQL server answers at {PG_URL} (set ANYREC_TEST_PG to point at one)")
    yield url
    import psycopg
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")




# The tiny network every test of a model started from a pretrained folder shares (transfer, transfer-tuned).
TINY_PRETRAIN = {
    "encoder": "hashing:32",
    "hidden": 16,
    "layers": 1,
    "heads": 1,
    "max_len": 8,
    "dropout": 0.0,
    "lr": 5e-3,
    "threads": 1,
    "batch_size": 32,
    "epochs": 3,
    "patience": 3,
}


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder ``anyrec pretrain-rec`` would write, pretrained for a few epochs on two small catalogs of
    their own (never the fixtures the tests score)."""
    from anyrec.lm.encoder import encode_catalog
    from anyrec.models.sequential.config import SequentialConfig
    from anyrec.models.sequential.pretrain import Source, pretrain

    out = tmp_path_factory.mktemp("tiny-pretrained")
    sources = []
    for seed in (11, 12):
        ds = checkerboard(n_users=30, n_items=16, per_user=5, seed=seed)
        text = encode_catalog(ds.catalog.texts(), encoder=TINY_PRETRAIN["encoder"])
        sources.append(Source(f"board-{seed}", text, [q + 1 for q in ds.interactions.sequences(ds.n_users)]))
    pretrain(sources, SequentialConfig(**TINY_PRETRAIN), out, valid_users=10)
    return out


def load_benchmark(name: str) -> object:
    """``benchmarks/<name>.py`` imported as the module ``name`` (in ``sys.modules``, so a benchmark's imports of its
    sibling modules, such as peers.py's ``peer_scores``, resolve the same way)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    known = sys.modules.get(name)
    if known is not None and Path(getattr(known, "__file__", "") or "").resolve() == path:
        return known
    if known is not None:  # the name is another module's (a test package called generative): keep it apart
        name = f"benchmarks_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))  # its siblings, while it runs (as when it is run as a script)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module
