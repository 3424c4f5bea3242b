"""Day closes are unchanged by how they are computed: a golden record of a few hundred accounts' closes.

The golden (tests/unit/data/day_close_golden.json) was recorded from the scorer before its day close was made
cheaper (incremental window sums, idle-day fast path): every close's score, components, band and churn-risk
reading, every signal (its id, explanation, evidence), every tip and the stored record must come out the same,
to the last bit of every float. A deliberate change of the scoring rules re-records it:
``.venv/bin/python -m tests.support.day_close_golden --record`` (and says why in the commit).
"""

from __future__ import annotations

import json

from tests.support.day_close_golden import GOLDEN_PATH, golden_digests


def test_day_closes_equal_the_golden_record() -> None:
    golden = json.loads(GOLDEN_PATH.read_text())
    digests, counts = golden_digests()
    assert counts == golden["counts"]
    differ = sorted(a for a, d in digests.items() if golden["digests"].get(a) != d)
    assert not differ, f"{len(differ)} accounts' closes differ from the golden record, e.g. {differ[:10]}"
    assert digests.keys() == golden["digests"].keys()


def test_the_golden_stream_exercises_every_rule() -> None:
    counts = json.loads(GOLDEN_PATH.read_text())["counts"]
    assert counts["closes"] > 10_000
    kinds = {k for k, n in counts.items() if k.startswith("signal:") and n > 10}
    assert len(kinds) >= 11, f"the stream must raise every kind of signal, raised only {sorted(kinds)}"
