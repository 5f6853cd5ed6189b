"""Each ready loader on a small folder written here, plus format detection."""

from __future__ import annotations

import json

import pytest

from anyrec.data import ReadPolicy, detect_format, load_dataset
from anyrec.errors import UnknownIdError


def test_recbole_atomic(tmp_path):
    (tmp_path / "toy.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t100\n1\t11\t3\t90\n2\t10\t5\t80\n"
    )
    (tmp_path / "toy.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n10\tHeat\t1995\tCrime "
        "Thriller\n11\tBabe\t1995\tComedy\n"
    )
    assert detect_format(tmp_path) == "recbole"
    ds = load_dataset(str(tmp_path))
    assert ds.catalog.text(0) == "Heat (1995). Genres: Crime Thriller."
    assert ds.catalog.categories(0) == ["Crime", "Thriller"]
    assert ds.catalog.title(1) == "Babe"


def test_movielens_100k_is_latin1_and_joins_wiki(tmp_path):
    genres = ["0"] * 19
    g1 = list(genres)
    g1[5] = "1"
    line = "1|Café Society (1995)|01-Jan-1995||http://x|" + "|".join(g1) + "\n"
    (tmp_path / "u.item").write_bytes(line.encode("latin-1"))
    (tmp_path / "u.data").write_text("7\t1\t4\t881250949\n8\t1\t5\t881250950\n")
    (tmp_path / "movie_wiki.csv").write_text(
        'movie_title,wiki_summary\nCafé Society (1995),"A comedy, set in a café."\n', encoding="utf-8"
    )
    assert detect_format(tmp_path) == "movielens"
    ds = load_dataset(str(tmp_path))
    assert ds.catalog.text(0) == "Café Society (1995). Genres: Comedy. A comedy, set in a café."
    assert ds.interactions.rating.tolist() == [4, 5]


def test_movielens_1m_dat(tmp_path):
    (tmp_path / "movies.dat").write_bytes("1::Toy Story (1995)::Animation|Children's\n".encode("latin-1"))
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n2::1::3::978300761\n")
    ds = load_dataset(str(tmp_path))
    assert ds.catalog.text(0) == "Toy Story (1995). Genres: Animation, Children's."
    assert len(ds.interactions) == 2


def test_movielens_latest_folds_tags(tmp_path):
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama\n2,X (2000),(no genres listed)\n'
    )
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964982704\n")
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,Funny,1\n2,1,funny,2\n2,1,politics,3\n")
    ds = load_dataset(str(tmp_path))
    assert ds.catalog.text(0) == "American President, The (1995). Genres: Comedy, Drama. Tags: funny, politics."
    assert ds.catalog.text(1) == "X (2000)."


def test_unisrec_rebuilds_sequences(tmp_path):
    (tmp_path / "S.text").write_text("item_id:token\ttext:token_seq\nA\tGlue.\nB\tTape.\nC\tLid.\n")
    (tmp_path / "S.item2index").write_text("A\t0\nB\t1\nC\t2\n")
    (tmp_path / "S.user2index").write_text("U1\t0\n")
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (tmp_path / "S.train.inter").write_text(head + "0\t0\t1\n")
    (tmp_path / "S.valid.inter").write_text(head + "0\t0 1\t2\n")
    (tmp_path / "S.test.inter").write_text(head + "0\t0 1 2\t0\n")
    assert detect_format(tmp_path) == "unisrec"
    ds = load_dataset(str(tmp_path))
    assert ds.users.raw_ids == ["U1"]
    assert ds.catalog.ids.raws(ds.interactions.item) == ["A", "B", "C", "A"]
    assert ds.interactions.time.tolist() == [0, 1, 2, 3]


def test_mind_clicks_history_and_counts(tmp_path):
    (tmp_path / "news.tsv").write_text(
        "N1\tsports\tgolf\tTiger wins\tA <b>big</b> day.\turl\t[]\t[]\nN2\tnews\tworld\tRain\t\turl\t[]\t[]\n"
    )
    (tmp_path / "behaviors.tsv").write_text(
        "1\tU1\t11/12/2019 2:14:46 PM\tN1 N9\tN2-1 N1-0\n2\tU1\t11/13/2019 2:14:46 PM\tN1 N9\tN1-1\n"
    )
    assert detect_format(tmp_path) == "mind"
    ds = load_dataset(str(tmp_path))
    assert ds.catalog.ids.raws(ds.interactions.item) == ["N1", "N9", "N2", "N1"]
    assert ds.interactions.event.tolist() == ["history", "history", "click", "click"]
    assert ds.catalog.text(0) == "Tiger wins. sports, golf. A big day."
    assert ds.report.added["items missing from the catalog, added with empty text"] == 1
    assert any("1 impressions shown but not clicked" in n for n in ds.report.notes)
    with pytest.raises(UnknownIdError):
        load_dataset(str(tmp_path), policy=ReadPolicy())


def _review(asin, t, title):
    return {
        "parent_asin": asin,
        "rating": 5.0,
        "timestamp_ms": t,
        "product": {"title": title, "brand": "Acme", "main_category": "Tools"},
    }


def test_amazon_2023_per_user_history(tmp_path):
    rows = [{"user_id": "A", "history": [_review("p1", 1000, "Hammer")], "heldout": _review("p2", 2000, "Saw")},
            {"user_id": "B", "history": [_review("p1", 3000, "Hammer")], "heldout": None}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert detect_format(tmp_path) == "amazon-reviews-2023"
    ds = load_dataset(str(tmp_path))
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 2, 3)
    assert ds.catalog.text(0) == "Hammer. Brand: Acme. Category: Tools."
    assert ds.interactions.time.tolist() == [1.0, 2.0, 3.0]


def test_amazon_2023_reviews_with_meta(tmp_path):
    (tmp_path / "meta_Tools.jsonl").write_text(
        json.dumps(
            {
                "parent_asin": "p1",
                "title": "Hammer",
                "store": "Acme",
                "categories": ["Tools", "Hand"],
                "features": ["Steel"],
                "description": [],
            }
        )
        + "\n"
    )
    (tmp_path / "Tools.jsonl").write_text(
        json.dumps({"user_id": "A", "parent_asin": "p1", "rating": 4, "timestamp": 5000}) + "\n"
    )
    ds = load_dataset(str(tmp_path))
    assert ds.catalog.text(0) == "Hammer. Brand: Acme. Category: Tools > Hand. Steel."


def test_named_default_dataset_resolves_offline():
    ds = load_dataset()
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    assert ds.catalog.title(0) == "Toy Story"
