"""A/B experiments between model versions: stable assignment, credited events, a report with intervals.

A user is assigned by a stable hash of ``experiment:user``, so they see one variant for the whole
experiment. Every list shown under an experiment is logged with its variant; an event that carries
the list's ``recommendation_id`` is credited to it. Per variant: impressions (lists shown), clicks
(lists with at least one positive event), conversions (lists with a purchase or add-to-cart); the
click-through rate gets a 95 % Wilson interval, and the two best variants a two-proportion z-test.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONVERSIONS = ("purchase", "add_to_cart")


@dataclass(frozen=True)
class Variant:
    name: str
    model_version: str
    share: float


def assign(experiment: str, user: str, variants: Sequence[Variant]) -> Variant:
    """The user's variant: a stable hash of ``experiment:user`` mapped onto the cumulative shares."""
    digest = hashlib.sha256(f"{experiment}:{user}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    total = sum(v.share for v in variants)
    acc = 0.0
    for v in variants:
        acc += v.share / total
        if u < acc:
            return v
    return variants[-1]


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (sound at small counts, unlike the normal one)."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when it cannot be computed)."""
    if min(n1, n2) == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def report(
    name: str, variants: Sequence[Variant], counts: dict[str, dict[str, int]], alpha: float = 0.05
) -> dict[str, Any]:
    """The experiment report from per-variant ``{impressions, clicks, conversions}``."""
    rows: list[dict[str, Any]] = []
    for v in variants:
        c = counts.get(v.name, {})
        n, k, conv = c.get("impressions", 0), c.get("clicks", 0), c.get("conversions", 0)
        low, high = wilson(k, n)
        rows.append(
            {
                "name": v.name,
                "model_version": v.model_version,
                "share": v.share,
                "impressions": n,
                "clicks": k,
                "conversions": conv,
                "ctr": k / n if n else 0.0,
                "ctr_low": low,
                "ctr_high": high,
                "conversion_rate": conv / n if n else 0.0,
            }
        )
    ranked = sorted(rows, key=lambda r: -r["ctr"])
    p = (
        two_proportion_p(ranked[0]["clicks"], ranked[0]["impressions"], ranked[1]["clicks"], ranked[1]["impressions"])
        if len(ranked) > 1
        else 1.0
    )
    significant = p < alpha
    return {
        "experiment": name,
        "variants": rows,
        "leader": ranked[0]["name"] if ranked else None,
        "p_value": p,
        "significant": significant,
        "winner": ranked[0]["name"] if significant else None,
        "alpha": alpha,
        "method": "two-proportion z-test on lists clicked / lists shown (best two variants), Wilson 95 % intervals",
    }
