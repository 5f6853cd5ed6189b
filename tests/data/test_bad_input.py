"""Every bad-input case gets a message naming the file, line and field, or is counted by policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anyrec.data import ColumnMapping, ReadPolicy, load_dataset
from anyrec.errors import (
    ConfigError,
    DuplicateIdError,
    EmptyFileError,
    EncodingError,
    FormatDetectionError,
    MalformedRowError,
    MissingColumnError,
    UnknownIdError,
)

ITEMS = "item_id,title,genres\n1,Alpha,Drama\n2,Beta,Comedy\n3,Gamma,Drama\n"
INTER = "user,item,ts,stars\nu1,1,10,4\nu1,2,11,5\nu2,3,12,3\n"


def write(tmp: Path, name: str, text: str | bytes) -> Path:
    p = tmp / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def mapping(tmp: Path, items: str = ITEMS, inter: str = INTER, **kw) -> ColumnMapping:
    write(tmp, "items.csv", items)
    write(tmp, "inter.csv", inter)
    base = dict(items=str(tmp / "items.csv"), item_id="item_id", text=("title", "genres"),
                interactions=str(tmp / "inter.csv"), user="user", item="item", time="ts", rating="stars")
    base.update(kw)
    return ColumnMapping(**base)


def test_clean_files_read(tmp_path):
    ds = load_dataset(mapping=mapping(tmp_path))
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 3, 3)
    assert ds.catalog.text(0) == "Alpha. Drama."
    assert ds.interactions.rating.tolist() == [4, 5, 3]


def test_malformed_row_names_file_and_line(tmp_path):
    m = mapping(tmp_path, inter=INTER + "u3,1,13,4,EXTRA\n")
    with pytest.raises(MalformedRowError) as err:
        load_dataset(mapping=m)
    assert err.value.line == 5 and err.value.path.endswith("inter.csv")
    assert "expected 4 fields" in str(err.value) and "inter.csv, line 5" in str(err.value)


def test_malformed_rows_skipped_are_counted(tmp_path):
    m = mapping(tmp_path, inter=INTER + "u3,1,13,4,EXTRA\nu3,2,notatime,4\nu3,3,14,4\n")
    ds = load_dataset(mapping=m, policy=ReadPolicy(bad_rows="skip"))
    assert len(ds.interactions) == 4
    assert ds.report.skipped["malformed rows in inter.csv"] == 2
    assert "line 5" in ds.report.examples["malformed rows in inter.csv"]


def test_unparseable_rating_names_the_field(tmp_path):
    with pytest.raises(MalformedRowError) as err:
        load_dataset(mapping=mapping(tmp_path, inter=INTER + "u3,1,13,five\n"))
    assert err.value.field == "stars" and err.value.line == 5


def test_wrong_encoding_names_the_line_and_suggests_latin1(tmp_path):
    data = (ITEMS + "4,Caf").encode() + "é".encode("latin-1") + b",Drama\n"
    write(tmp_path, "items.csv", data)
    m = mapping(tmp_path)
    m = ColumnMapping(**{**m.__dict__, "items": str(write(tmp_path, "items_latin.csv", data))})
    with pytest.raises(EncodingError) as err:
        load_dataset(mapping=m)
    assert err.value.line == 5 and "latin-1" in str(err.value)
    ds = load_dataset(mapping=m, policy=ReadPolicy(encoding="latin-1"))
    assert ds.catalog.text(3).startswith("Café")


def test_missing_column_lists_columns_and_suggests(tmp_path):
    with pytest.raises(MissingColumnError) as err:
        load_dataset(mapping=mapping(tmp_path, user="usr"))
    msg = str(err.value)
    assert (
        err.value.field == "usr"
        and "inter.csv" in msg
        and "user, item, ts, stars" in msg
        and "Did you mean 'user'" in msg
    )


def test_duplicate_item_ids_error_names_both_lines(tmp_path):
    with pytest.raises(DuplicateIdError) as err:
        load_dataset(mapping=mapping(tmp_path, items=ITEMS + "2,Beta again,Drama\n"))
    assert err.value.line == 5 and "items.csv line 3" in str(err.value)


@pytest.mark.parametrize("keep, title", [("first", "Beta"), ("last", "Beta again")])
def test_duplicate_item_policy_counts(tmp_path, keep, title):
    ds = load_dataset(
        mapping=mapping(tmp_path, items=ITEMS + "2,Beta again,Drama\n"), policy=ReadPolicy(duplicate_items=keep)
    )
    assert ds.n_items == 3 and ds.catalog.title(1) == title
    assert sum(ds.report.skipped.values()) == 1


def test_unknown_item_error_names_file_line_field(tmp_path):
    with pytest.raises(UnknownIdError) as err:
        load_dataset(mapping=mapping(tmp_path, inter=INTER + "u2,99,13,4\n"))
    assert (err.value.line, err.value.field) == (5, "item") and "'99'" in str(err.value)


def test_unknown_item_skip_and_add_are_counted(tmp_path):
    m = mapping(tmp_path, inter=INTER + "u2,99,13,4\nu2,98,14,4\n")
    skipped = load_dataset(mapping=m, policy=ReadPolicy(unknown_items="skip"))
    assert (
        len(skipped.interactions) == 3
        and skipped.report.skipped["interactions naming items missing from the catalog"] == 2
    )
    added = load_dataset(mapping=m, policy=ReadPolicy(unknown_items="add"))
    assert added.n_items == 5 and added.report.added["items missing from the catalog, added with empty text"] == 2


@pytest.mark.parametrize("content, what", [("", "file is empty"), ("user,item,ts,stars\n", "no data rows")])
def test_empty_files(tmp_path, content, what):
    with pytest.raises(EmptyFileError, match=what) as err:
        load_dataset(mapping=mapping(tmp_path, inter=content))
    assert err.value.path.endswith("inter.csv")


def test_all_rows_skipped_is_an_error_not_an_empty_dataset(tmp_path):
    with pytest.raises(EmptyFileError, match="no interactions were read"):
        load_dataset(
            mapping=mapping(tmp_path, inter="user,item,ts,stars\nu1,1,x,4\n"), policy=ReadPolicy(bad_rows="skip")
        )


def test_empty_ids_are_malformed(tmp_path):
    with pytest.raises(MalformedRowError, match="user id is empty") as err:
        load_dataset(mapping=mapping(tmp_path, inter=INTER + ",1,13,4\n"))
    assert err.value.field == "user"


def test_jsonl_bad_line_and_nested_columns(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "a", "product": {"title": "Lamp"}}) + "\n{not json\n", encoding="utf-8")
    inter = tmp_path / "inter.jsonl"
    inter.write_text(json.dumps({"u": "x", "i": "a"}) + "\n", encoding="utf-8")
    m = ColumnMapping(
        items=str(items), item_id="id", text=("product.title",), interactions=str(inter), user="u", item="i"
    )
    with pytest.raises(MalformedRowError) as err:
        load_dataset(mapping=m)
    assert err.value.line == 2 and "not valid JSON" in str(err.value)
    ds = load_dataset(mapping=m, policy=ReadPolicy(bad_rows="skip"))
    assert ds.catalog.text(0) == "Lamp." and ds.report.skipped["malformed rows in items.jsonl"] == 1


def test_parquet_reads(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"user": ["a", "b"], "item": ["1", "2"], "when": ["2020-01-01T00:00:00", "2020-01-02"]}),
        tmp_path / "i.parquet",
    )
    ds = load_dataset(
        mapping=ColumnMapping(interactions=str(tmp_path / "i.parquet"), user="user", item="item", time="when")
    )
    assert ds.interactions.time[1] - ds.interactions.time[0] == 86400


def test_unknown_folder_lists_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(FormatDetectionError) as err:
        load_dataset(str(tmp_path))
    msg = str(err.value)
    for fmt in ("unisrec", "movielens", "mind", "recbole", "amazon-reviews-2023", "--format table"):
        assert fmt in msg


def test_unknown_dataset_name_and_format():
    with pytest.raises(ConfigError, match="neither a named dataset"):
        load_dataset("no-such-dataset")
    with pytest.raises(ConfigError, match="unknown format"):
        load_dataset("ml-100k", fmt="xml")


def test_unclosed_quote_names_the_catalog_line_where_it_opens(tmp_path):
    items = 'item_id,title,genres\n1,"Alpha,Drama\n2,Beta,Comedy\n3,Gamma,Drama\n'
    with pytest.raises(MalformedRowError) as err:
        load_dataset(mapping=mapping(tmp_path, items=items))
    assert err.value.path.endswith("items.csv") and err.value.line == 2
    assert "never closed" in str(err.value) and "(3 lines)" in str(err.value)


def test_quoted_fields_with_line_breaks_still_read(tmp_path):
    items = 'item_id,title,genres\n1,"Alpha\npart two",Drama\n2,Beta,Comedy\n3,Gamma,Drama\n'
    ds = load_dataset(mapping=mapping(tmp_path, items=items))
    assert ds.n_items == 3 and ds.catalog.text(0).startswith("Alpha")
