"""Property tests for the parsers: whatever text a cell holds, it reads back unchanged."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from anyrec.data import ColumnMapping, load_dataset
from anyrec.data.builder import parse_time
from anyrec.data.rows import iter_table

# Cell text: anything printable incl. quotes, delimiters and newlines, but no NUL / lone surrogates.
cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=30)
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(ids, cell), min_size=1, max_size=12, unique_by=lambda r: r[0]), st.sampled_from([",", "\t", ";"])
)
def test_delimited_round_trip(rows, sep):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("t.tsv" if sep == "\t" else "t.csv")
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=sep, lineterminator="\n")
        w.writerow(["id", "text"])
        w.writerows(rows)
        path.write_text(buf.getvalue(), encoding="utf-8")
        got = [(rec["id"], rec["text"]) for _line, rec, _cols in iter_table(path, sep=sep)]
    # csv drops rows that are a single empty field; ids are never empty so none are dropped.
    assert got == list(rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ids, ids, st.integers(0, 2**40)), min_size=1, max_size=15))
def test_jsonl_interactions_round_trip(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "i.jsonl"
        path.write_text("".join(json.dumps({"u": u, "i": i, "t": t}) + "\n" for u, i, t in rows), encoding="utf-8")
        ds = load_dataset(mapping=ColumnMapping(interactions=str(path), user="u", item="i", time="t"))
    assert ds.users.raws(ds.interactions.user) == [u for u, _, _ in rows]
    assert ds.catalog.ids.raws(ds.interactions.item) == [i for _, i, _ in rows]
    assert ds.interactions.time.tolist() == [float(t) for _, _, t in rows]


@given(st.integers(0, 2**34), st.floats(0, 2**34, allow_nan=False))
def test_parse_time_numbers(i, f):
    assert parse_time(i, path="p", line=1, field="t") == float(i)
    assert parse_time(str(i), path="p", line=1, field="t") == float(i)
    assert parse_time(f, path="p", line=1, field="t") == f


def test_parse_time_dates():
    assert parse_time("1970-01-02", path="p", line=1, field="t") == 86400.0
    assert parse_time("11/12/2019 2:14:46 PM", path="p", line=1, field="t") == parse_time(
        "2019-11-12T14:14:46", path="p", line=1, field="t"
    )
