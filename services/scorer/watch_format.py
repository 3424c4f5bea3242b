"""The stored form of a partition's data-quality watch (``PartitionWatch``), versioned and read by name. Pure.

Stored with each checkpoint beside the partition's offsets (table ``scorer_partition_watch``), so a restarted or
newly assigned scorer reads on from the same point: the same events give the same verdicts and notices.
"""

from __future__ import annotations

from typing import Any

from services.scorer.data_quality import DataQualityDay, PartitionWatch, QuietDay, SourceDays

WATCH_VERSION = 1


def watch_to_json(w: PartitionWatch) -> dict[str, Any]:
    return {
        "v": WATCH_VERSION,
        "closed_through": w.closed_through,
        "sources": {n: {"first_day": s.first_day, "counts": _keyed(s.counts)} for n, s in sorted(w.sources.items())},
        "active_on": _keyed(w.active_on),
        "quiet_days": [[q.day, q.went_quiet, q.active] for q in w.quiet_days],
        "verdicts": {
            str(d): {"silent": sorted(v.silent), "spike": [v.spike.went_quiet, v.spike.active] if v.spike else None}
            for d, v in sorted(w.verdicts.items())
        },
        "raised": dict(sorted(w.raised.items())),
    }


def watch_from_json(data: dict[str, Any], watch: PartitionWatch | None = None) -> PartitionWatch:
    """Fills ``watch`` (carrying the rules; a fresh default one if None) from a stored row of any version."""
    version = int(data.get("v", 0))
    if version > WATCH_VERSION:
        raise ValueError(f"a data-quality watch of format version {version}, newer than this scorer knows")
    w = watch or PartitionWatch()
    w.closed_through = data.get("closed_through")
    w.sources = {
        n: SourceDays(int(s["first_day"]), _unkeyed(s.get("counts", {}))) for n, s in data.get("sources", {}).items()
    }
    w.active_on = _unkeyed(data.get("active_on", {}))
    w.quiet_days = [QuietDay(int(d), int(n), int(a)) for d, n, a in data.get("quiet_days", [])]
    w.verdicts = {}
    for d, v in data.get("verdicts", {}).items():
        day = int(d)
        spike = QuietDay(day, int(v["spike"][0]), int(v["spike"][1])) if v.get("spike") else None
        w.verdicts[day] = DataQualityDay(day, frozenset(v.get("silent", ())), spike)
    w.raised = {s: int(since) for s, since in data.get("raised", {}).items()}
    return w


def _keyed(counts: dict[int, int]) -> dict[str, int]:
    return {str(d): n for d, n in sorted(counts.items())}


def _unkeyed(counts: dict[str, Any]) -> dict[int, int]:
    return {int(d): int(n) for d, n in counts.items()}
