"""The store's A/B experiments: variants, their state, and the events credited to each variant's shown lists."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, case, delete, func, insert, select, update

from anyrec.store.schema import events, experiments, recommendations


class ExperimentRecords:
    """A part of :class:`anyrec.store.Store` (kept apart so each file reads in one sitting)."""

    engine: Engine

    def put_experiment(self, name: str, variants: list[dict[str, Any]]) -> None:
        """Create or replace an experiment (running); replacing one restarts its counts from now."""
        with self.engine.begin() as conn:
            conn.execute(delete(experiments).where(experiments.c.name == name))
            conn.execute(insert(experiments).values(name=name, variants=json.dumps(variants), status="running",
                                                    created_at=time.time(), ended_at=None, winner=None))

    def experiments(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(experiments).order_by(experiments.c.created_at)).all()
        return [{**dict(r._mapping), "variants": json.loads(r.variants)} for r in rows]

    def experiment(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.experiments() if e["name"] == name), None)

    def end_experiment(self, name: str, winner: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(experiments).where(experiments.c.name == name)
                         .values(status="ended", ended_at=time.time(), winner=winner))

    def experiment_counts(self, name: str, positive_types: Sequence[str], conversion_types: Sequence[str],
                          since: float) -> dict[str, dict[str, int]]:
        """Per variant: lists shown, lists with a credited positive event, lists with a conversion.

        One statement, so the three counts come from one snapshot: shown lists are logged in batches
        while the report is read, and separate queries could count more clicked lists than shown ones.
        """
        def credited(types: Sequence[str]) -> Any:
            hit = (select(events.c.seq).where(events.c.recommendation_id == recommendations.c.id,
                                             events.c.type.in_(list(types))).exists())
            return func.coalesce(func.sum(case((hit, 1), else_=0)), 0)

        query = (select(recommendations.c.variant, func.count(), credited(positive_types), credited(conversion_types))
                 .where(recommendations.c.experiment == name, recommendations.c.created_at >= since)
                 .group_by(recommendations.c.variant))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {variant: {"impressions": int(n), "clicks": int(k), "conversions": int(c)} for variant, n, k, c in rows}

    def recommendation(self, rec_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(recommendations).where(recommendations.c.id == rec_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["items"] = json.loads(out["items"])
        return out
