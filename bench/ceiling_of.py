"""The scorer's in-memory ceiling of an earlier commit against the working tree's, on this machine, now.

    python -m bench.ceiling_of 476f3f5 [--accounts 1000] [--events 500000] [--rounds 2]

Issue 15 asks for a ceiling "at least 1.5x today's" (the day it was filed, commit 476f3f5), and this machine's
speed drifts by tens of percent within a session, so a figure from another day is no comparison. This extracts
the commit (``git archive``) into a temporary folder and runs its own ``bench.scorer`` in-memory fold (its
``_events`` stream, its ``_in_memory``: what that commit called its ceiling) and the working tree's, in turns,
each in a fresh process with the risk model and GC settings of its own code; it prints the best of each and the
ratio. No Kafka and no PostgreSQL.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run inside the child: the tree at sys.argv[1] first on the path, its own bench and scorer.
_FOLD = """
import sys
sys.path.insert(0, sys.argv[1])
from bench.scorer import _events, _in_memory
from services.scorer.app import scoring_config
from services.scorer.risk_model import default_model_path, load_model
from services.scorer.settings import ScorerSettings
from shared.service_app import tune_gc_for_batches
tune_gc_for_batches()
settings = ScorerSettings()
config = scoring_config(settings, load_model(default_model_path()))
records = _events(int(sys.argv[3]), int(sys.argv[2]))
print(_in_memory(settings, records, config)[0])
"""


def _fold_rate(tree: Path, accounts: int, events: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _FOLD, str(tree), str(accounts), str(events)],
        cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def _extract(commit: str, into: Path) -> Path:
    archive = into / "tree.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", commit], stdout=f, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling_of", description=__doc__)
    parser.add_argument("commit", help="the earlier commit, e.g. 476f3f5 (the day issue 15 was filed)")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=2, help="turns of each (the best of each is compared)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ceiling-of-") as tmp:
        then = _extract(args.commit, Path(tmp))
        rates: dict[str, list[float]] = {args.commit: [], "working tree": []}
        for _ in range(args.rounds):  # in turns, so a slow minute of the machine falls on both
            rates[args.commit].append(_fold_rate(then, args.accounts, args.events))
            rates["working tree"].append(_fold_rate(REPO, args.accounts, args.events))
    print(f"{args.events} events of {args.accounts} accounts, in-memory ceiling, best of {args.rounds}:")
    for name, seen in rates.items():
        print(f"{name + ':':15s} {max(seen):10.0f} events/s  (each: {', '.join(f'{r:.0f}' for r in seen)})")
    ratio = max(rates["working tree"]) / max(rates[args.commit])
    print(f"{'ratio:':15s} {ratio:10.2f}x  (issue 15's target for the 1k stream: >= 1.5x the ceiling of 476f3f5)")


if __name__ == "__main__":
    main(sys.argv[1:])
