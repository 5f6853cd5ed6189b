"""One store test suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from anyrec.errors import ConfigError
from anyrec.store import Event, Store, normalise_url


def _upgrade_to(conn: object, revision: str) -> None:
    """Run the store's migrations up to ``revision`` on ``conn`` (a store as an older anyrec left it)."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import anyrec.store.store as store_module

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


@pytest.fixture
def store(store_url: str) -> Store:
    s = Store.open(store_url)
    yield s
    s.close()


def test_migrations_run_once_and_reopen_keeps_data(store_url: str, store: Store) -> None:
    store.upsert_items([("a", {"title": "A"}, None, True)])
    again = Store.open(store_url)  # upgrade to head is a no-op on a current schema
    assert again.counts()["items"] == 1
    with again.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar_one() == "0006"
    again.close()


def test_a_store_at_the_first_revision_upgrades_with_its_data(store_url: str) -> None:
    old = Store.open(store_url, migrate=False)
    with old.engine.begin() as conn:
        _upgrade_to(conn, "0001")
        conn.execute(text("insert into recommendations (id, user_id, model_version, variant, items, created_at) "
                          "values ('r1', 'u', 'v1', null, '[\"a\"]', 1.0)"))
    old.close()
    new = Store.open(store_url)  # upgrades to head
    assert new.recommendation("r1")["items"] == ["a"] and new.recommendation("r1")["experiment"] is None  # type: ignore[index]
    assert new.experiments() == []
    new.close()


def test_items_upsert_replace_delete(store: Store) -> None:
    store.upsert_items([("a", {"title": "A"}, "x", True), ("b", {"title": "B"}, None, False)])
    store.upsert_items([("a", {"title": "A2", "description": "new"}, "y", True)])
    a = store.item("a")
    assert a is not None and a.fields == {"title": "A2", "description": "new"} and a.category == "y" and a.available
    assert store.item("b").available is False  # type: ignore[union-attr]
    assert store.delete_item("a") and not store.delete_item("a") and not store.delete_item("zzz")
    assert store.item("a").deleted and store.counts()["items"] == 1  # type: ignore[union-attr]
    store.upsert_items([("a", {"title": "A3"}, None, True)])  # putting it again brings it back
    assert not store.item("a").deleted  # type: ignore[union-attr]
    assert [i.id for i in store.items()] == ["a", "b"]


def test_events_are_appended_in_order_and_read_back_by_time(store: Store) -> None:
    seqs = store.add_events([Event("u", "a", "click", time=20.0), Event("u", "b", "rating", 4.5, time=10.0),
                             Event("v", "a", "like", recommendation_id="r1")])
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert store.add_events([Event("u", "c", "view", time=20.0)])[0] > seqs[-1]
    assert store.history("u") == [("b", "rating", 4.5, 10.0), ("a", "click", None, 20.0), ("c", "view", None, 20.0)]
    assert store.item_counts() == {"a": 2, "b": 1, "c": 1}
    assert [e[:3] for e in store.all_events()] == [
        ("u", "a", "click"),
        ("u", "b", "rating"),
        ("v", "a", "like"),
        ("u", "c", "view"),
    ]
    assert store.counts()["users"] == 2 and store.user_since("u") is not None and store.user_since("w") is None


def test_many_events_in_one_call(store: Store) -> None:
    seqs = store.add_events([Event(f"u{n % 7}", f"i{n % 11}", "view", time=float(n)) for n in range(12_000)])
    assert len(seqs) == 12_000 and len(set(seqs)) == 12_000
    assert store.counts()["events"] == 12_000 and store.counts()["users"] == 7


def test_forgetting_a_user_deletes_everything_of_theirs(store: Store) -> None:
    store.add_events([Event("u", "a", "click"), Event("u", "b", "like"), Event("v", "a", "click")])
    store.log_recommendations(
        [{"id": "r1", "user_id": "u", "model_version": "v1", "variant": None, "items": ["a"], "created_at": 1.0}]
    )
    assert store.forget_user("u") == 2
    assert store.history("u") == [] and store.user_since("u") is None and store.recommendation("r1") is None
    assert store.history("v") and store.counts()["events"] == 1


def test_keys_are_stored_hashed(store: Store) -> None:
    key = store.create_key("ci")
    assert key.startswith("ak_") and len(key) > 40 and store.check_key(key) and not store.check_key(key + "x")
    with store.engine.connect() as conn:
        stored = conn.execute(text("select key_hash from api_keys")).scalar_one()
    assert key not in stored and len(stored) == 64


def test_model_registry_and_active_pointer(store: Store) -> None:
    assert store.active_version() is None and store.versions() == []
    store.register_version("v1", "/m/1", "zeroshot", {"valid_ndcg@10": 0.1}, data_until=5.0)
    store.register_version("v2", "/m/2", "sequential", {}, data_until=6.0)
    with pytest.raises(ConfigError, match="already registered"):
        store.register_version("v1", "/m/x", "zeroshot", {}, data_until=1.0)
    store.set_active("v2")
    store.set_active("v1")
    assert [(v["version"], v["active"]) for v in store.versions()] == [("v1", True), ("v2", False)]
    assert store.version("v1")["metrics"] == {"valid_ndcg@10": 0.1}  # type: ignore[index]


def test_bad_store_urls_are_named() -> None:
    assert normalise_url("./x.db") == "sqlite:///x.db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ConfigError, match="not supported"):
        Store.open("mysql://u@h/db")
    with pytest.raises(ConfigError, match="cannot open"):
        Store.open("postgresql://nobody@127.0.0.1:1/none")


def test_a_seq_is_never_handed_out_twice_after_deletes(store: Store) -> None:
    first = store.add_events([Event("a", "i", "click"), Event("b", "i", "click"), Event("b", "j", "click")])
    assert store.forget_user("b") == 2  # the newest two seqs are gone
    again = store.add_events([Event("c", "i", "click"), Event("c", "j", "click")])
    assert min(again) > max(first), (first, again)
    store.forget_user("c")
    assert min(store.add_events([Event("d", "i", "click")])) > max(again)


def test_a_store_at_revision_0002_upgrades_to_seqs_that_are_never_reused(store_url: str) -> None:
    old = Store.open(store_url, migrate=False)
    with old.engine.begin() as conn:
        _upgrade_to(conn, "0002")
        for seq, user in ((1, "a"), (2, "b"), (3, "b")):
            conn.execute(
                text(
                    "insert into events (seq, user_id, item_id, type, value, time, recommendation_id, received_at) "
                    f"values ({seq}, '{user}', 'i', 'click', null, {seq}.0, null, 1.0)"
                )
            )
        if (
            conn.dialect.name == "postgresql"
        ):  # rows inserted with explicit seqs: move the serial on, as inserts would have
            conn.execute(text("select setval(pg_get_serial_sequence('events', 'seq'), 3)"))
    old.close()
    new = Store.open(store_url)  # upgrades to head, rows and seqs kept
    assert [(u, t) for u, _i, _k, _v, t in new.all_events()] == [("a", 1.0), ("b", 2.0), ("b", 3.0)]
    new.forget_user("b")
    assert new.add_events([Event("c", "i", "click")]) == [4]
    new.close()


def test_experiment_counts_are_one_snapshot_while_lists_keep_arriving(store: Store) -> None:
    """Lists and clicks logged while the report is read never make clicked lists outnumber shown ones."""
    from sqlalchemy import event as sa_event

    def shown(ids: range, t: float) -> list[dict[str, object]]:
        return [{"id": f"r{i}", "user_id": f"u{i}", "model_version": "v1", "variant": "a", "items": ["x"],
                 "created_at": t, "experiment": "ab"} for i in ids]

    store.log_recommendations(shown(range(4), 10.0))
    store.add_events(
        [
            Event("u0", "x", "click", recommendation_id="r0"),
            Event("u1", "x", "purchase", recommendation_id="r1"),
            Event("u1", "x", "click", recommendation_id="r1"),
        ]
    )
    assert store.experiment_counts("ab", ["click", "purchase"], ["purchase"], 0.0) == {
        "a": {"impressions": 4, "clicks": 2, "conversions": 1}}
    assert store.experiment_counts("ab", ["click"], ["purchase"], 11.0) == {}
    busy = {"armed": True}

    def arrive(conn: object, cursor: object, statement: str, *args: object) -> None:
        # the batch writer lands more shown-and-clicked lists right after the report's first read
        if busy["armed"] and statement.lstrip().lower().startswith("select"):
            busy["armed"] = False
            store.log_recommendations(shown(range(4, 10), 12.0))
            store.add_events([Event(f"u{i}", "x", "click", recommendation_id=f"r{i}") for i in range(4, 10)])

    sa_event.listen(store.engine, "after_cursor_execute", arrive)
    try:
        counts = store.experiment_counts("ab", ["click", "purchase"], ["purchase"], 0.0)["a"]
    finally:
        sa_event.remove(store.engine, "after_cursor_execute", arrive)
    assert not busy["armed"] and counts["clicks"] <= counts["impressions"]
    assert store.experiment_counts("ab", ["click"], ["purchase"], 0.0)["a"] == {
        "impressions": 10,
        "clicks": 8,
        "conversions": 1,
    }
