"""NDCG@k per group and overall, as ToolBench's ``APIEvaluator`` reports it (binary relevance,
log2 discount, the ideal ranking of ``min(k, |relevant|)`` hits), in percent."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from tasks.toolbench.retriever.corpus import ApiId, RetrievalQuery

KS = (1, 3, 5)
OVERALL = "overall"


def ndcg_at_k(ranked: list[ApiId], relevant: frozenset[ApiId] | set[ApiId], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


@dataclass
class RetrievalScores:
    """``rows[group][k]``: mean NDCG@k x 100 over the group's queries; groups are the
    instruction levels (G1, G2, G3), the test sets (G1_tool...) and ``overall``."""

    name: str
    rows: dict[str, dict[int, float]]
    counts: dict[str, int] = field(default_factory=dict)

    def metrics(self, prefix: str = "retriever") -> dict[str, float]:
        return {f"{prefix}/{self.name}/{group}/ndcg@{k}": v for group, row in self.rows.items() for k, v in row.items()}


def score(name: str, queries: list[RetrievalQuery], rankings: list[list[ApiId]], ks: tuple[int, ...] = KS,
          by: str = "level") -> RetrievalScores:
    """Mean NDCG@k by ``level`` (G1/G2/G3) or by ``group`` (test set), plus overall."""
    if len(queries) != len(rankings):
        raise ValueError(f"{len(queries)} queries but {len(rankings)} rankings")
    per_query = [{k: ndcg_at_k(r, q.relevant, k) for k in ks} for q, r in zip(queries, rankings)]
    keys = [q.level if by == "level" else q.group for q in queries]
    rows: dict[str, dict[int, float]] = {}
    counts: dict[str, int] = {}
    for group in sorted(set(keys)) + [OVERALL]:
        mine = [s for s, g in zip(per_query, keys) if group in (g, OVERALL)]
        rows[group] = {k: 100 * statistics.fmean(s[k] for s in mine) for k in ks}
        counts[group] = len(mine)
    return RetrievalScores(name=name, rows=rows, counts=counts)


def markdown(scores: list[RetrievalScores], ks: tuple[int, ...] = KS) -> str:
    """One row per retriever, NDCG@k columns per group (``G1 @1`` ...)."""
    groups = list(scores[0].rows)
    head = ["retriever"] + [f"{g} @{k}" for g in groups for k in ks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scores:
        cells = [s.name] + [f"{s.rows[g][k]:.1f}" for g in groups for k in ks]
        lines.append("| " + " | ".join(cells) + " |")
    counts = ", ".join(f"{g}: {n}" for g, n in scores[0].counts.items())
    return "\n".join(lines) + f"\n\nqueries: {counts}"
