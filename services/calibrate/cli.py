"""``churnwatch calibrate``: fit the churn-risk model on labelled history, choose its alert threshold, write its file.

1. Weekly snapshots at day closes, labelled by churn within H days (services/calibrate/snapshots.py).
2. Time split: fit on the snapshots before the validation period (the last ``--validation-days`` days), replay
   the history with that model, and choose the enter threshold on the validation period's alerts for the goal
   (``--target-precision``, ``--budget`` or the default: precision >= 3x the base rate within 0.5 alerts per
   account per month, warning the most churners). Those are the figures reported.
3. Refit on every snapshot for the saved model (the validation figures are the earlier model's: the saved one
   has seen the validation weeks too), with the chosen thresholds and how it was made.
``--evaluate-on DIR`` then replays a held-out history (``churnwatch simulate --out DIR``) with the saved model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.backtest.model import Period
from services.backtest.source import OutcomesFileError, read_outcomes_csv
from services.calibrate.snapshots import WARMUP_DAYS, read_events, read_profiles, weekly_snapshots
from services.calibrate.validate import (
    CANDIDATES,
    AlertFigures,
    Goal,
    alert_figures,
    choose_enter,
    daily_risk,
    figures_json,
    finite_or_none,
    risk_auc,
    thresholds_for,
    validation_period,
)
from services.scorer.risk_model import RiskModel, model_to_json
from services.scorer.windows import DEFAULT_RULES, WindowRules


@dataclass(frozen=True)
class HistoryFiles:
    events: Path
    accounts: Path
    outcomes: Path

    @staticmethod
    def in_dir(directory: Path) -> HistoryFiles:
        return HistoryFiles(directory / "events.jsonl.gz", directory / "accounts.jsonl", directory / "outcomes.csv")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calibrate", help="fit the churn-risk model on labelled history and write its file")
    p.add_argument("--events", type=Path, required=True, help="events, one per line (.jsonl or .jsonl.gz)")
    p.add_argument("--accounts", type=Path, required=True, help="account profiles, one per line (.jsonl)")
    p.add_argument("--outcomes", type=Path, required=True, help="CSV account_id,churned_on")
    p.add_argument("--out", type=Path, required=True, help="where the model file goes")
    p.add_argument("--horizon-days", type=int, default=60, help="the estimate is of churn within this many days")
    p.add_argument("--validation-days", type=int, default=120, help="the last days of data, kept for validation")
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--target-precision", type=float, help="choose the threshold for this precision of alerts")
    goal.add_argument("--budget", type=float, help="choose it for at most N new risk alerts per CSM per week")
    p.add_argument("--evaluate-on", type=Path, help="a held-out history directory to report the saved model on")


def _command(args: argparse.Namespace) -> str:
    """The command that made the file, without --out: where a file was written is not part of what it is."""
    parts = ["churnwatch calibrate", f"--events {args.events}", f"--accounts {args.accounts}"]
    parts += [f"--outcomes {args.outcomes}", f"--horizon-days {args.horizon_days}"]
    parts.append(f"--validation-days {args.validation_days}")
    if args.target_precision is not None:
        parts.append(f"--target-precision {args.target_precision:g}")
    if args.budget is not None:
        parts.append(f"--budget {args.budget:g}")
    if args.evaluate_on is not None:
        parts.append(f"--evaluate-on {args.evaluate_on}")
    return " ".join(parts)


def _data_provenance(files: HistoryFiles) -> dict[str, Any]:
    digest = hashlib.sha256()
    with files.events.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    out: dict[str, Any] = {"events": files.events.name, "events_sha256": digest.hexdigest()}
    manifest = files.events.parent / "manifest.json"
    if manifest.exists():  # a simulated base: how to make it again
        m = json.loads(manifest.read_text())
        out["simulated"] = {k: m.get(k) for k in ("generator", "seed", "accounts", "start", "end", "days")}
        out["simulated"]["command"] = (
            f"churnwatch simulate --out DIR --accounts {m.get('accounts')} --days {m.get('days')} "
            f"--start {m.get('start')} --seed {m.get('seed')}"
        )
    return out


def _period_json(p: Period) -> list[str]:
    return [p.start.isoformat(), p.end.isoformat()]


@dataclass(frozen=True)
class Calibration:
    model: RiskModel
    summary: list[str]


def calibrate(files: HistoryFiles, args: argparse.Namespace, rules: WindowRules = DEFAULT_RULES) -> Calibration:
    # scikit-learn loads in about a second: only a calibration pays for it, not every churnwatch command
    from services.calibrate.fit import DEFAULT_C, fit_model, library_versions

    horizon = args.horizon_days
    profiles, churned = read_profiles(files.accounts), read_outcomes_csv(files.outcomes)
    snaps = weekly_snapshots(read_events(files.events), profiles, churned, horizon_days=horizon, rules=rules)
    validation = validation_period(snaps.period, args.validation_days)
    train = [s for s in snaps.snapshots if s.day < validation.start]
    held = [s for s in snaps.snapshots if s.day >= validation.start]
    early = fit_model(train, horizon_days=horizon).model
    scored = daily_risk(read_events(files.events), profiles, churned, early, rules)
    figures = [alert_figures(scored, thresholds_for(c), validation, horizon) for c in CANDIDATES]
    goal = Goal(args.target_precision, args.budget)
    chosen, met = choose_enter(figures, goal)
    auc = risk_auc(scored, validation, horizon)
    final = fit_model(snaps.snapshots, horizon_days=horizon)
    provenance = {
        "made_by": _command(args),
        "data": _data_provenance(files),
        "period": _period_json(snaps.period),
        "rows": final.rows,
        "positives": final.positives,
        "snapshots": f"one per account-week past its first {WARMUP_DAYS} days, alive, labelled by churn within "
        f"{horizon} days, censored {horizon} days before the data end",
        "fit": {"estimator": "StandardScaler + LogisticRegression (L2, lbfgs)", "C": DEFAULT_C, **library_versions()},
        "validation": {
            "note": "fitted on the weeks before the validation period, measured on its alerts; the saved model is "
            "then refitted on every week",
            "training_rows": len(train),
            "training_positives": sum(s.label for s in train),
            "period": _period_json(validation),
            "rows": len(held),
            "positives": sum(s.label for s in held),
            "auc": finite_or_none(auc),
            "goal": goal.describe(),
            "goal_met": met,
            "at_threshold": figures_json(chosen),
        },
    }
    model = replace(final.model, thresholds=thresholds_for(chosen.enter), provenance=provenance)
    summary = [
        f"snapshots: {final.rows:,} account-weeks ({final.positives} followed by churn within {horizon} days), "
        f"{_period_json(snaps.period)}",
        f"validation {_period_json(validation)}: fitted on {len(train):,} earlier weeks; ROC AUC {_f(auc, 3)}",
        f"goal: {goal.describe()}: {'met' if met else 'NOT met, best lift instead'}",
        f"enter {model.thresholds.enter:g} / exit {model.thresholds.exit:g} / critical {model.thresholds.critical:g}:"
        f" {_figures_line(chosen)}",
    ]
    return Calibration(model, summary)


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _figures_line(f: AlertFigures) -> str:
    return (
        f"{f.alerts} alerts ({f.judged} judged), precision {_pct(f.precision)} vs base rate {_pct(f.base_rate)} "
        f"(lift {_f(f.lift)}), {_pct(f.recall)} of {f.churners_observable} churners warned 14-60 days ahead, "
        f"{_f(f.alerts_per_account_month)} alerts per account-month, {_f(f.alerts_per_csm_week)} per CSM-week "
        f"(busiest {_f(f.max_alerts_per_csm_week)})"
    )


def evaluate_on(model: RiskModel, files: HistoryFiles, rules: WindowRules = DEFAULT_RULES) -> dict[str, Any]:
    """The saved model on a held-out history: the backtest's AUC over every account-week and over those after the
    first 28 days of data, and its alerts at the model's thresholds."""
    profiles, churned = read_profiles(files.accounts), read_outcomes_csv(files.outcomes)
    scored = daily_risk(read_events(files.events), profiles, churned, model, rules)
    p, h = scored.period, model.horizon_days
    settled = Period(p.start + timedelta(days=WARMUP_DAYS), p.end)
    figures = alert_figures(scored, model.thresholds, p, h)
    return {
        "data": _data_provenance(files),
        "period": _period_json(p),
        "auc": finite_or_none(risk_auc(scored, p, h)),
        "auc_after_first_28_days": finite_or_none(risk_auc(scored, settled, h)),
        "at_threshold": figures_json(figures),
        "summary": _figures_line(figures),
    }


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        result = calibrate(HistoryFiles(args.events, args.accounts, args.outcomes), args)
        model = result.model
        if args.evaluate_on is not None:
            held_out = evaluate_on(model, HistoryFiles.in_dir(args.evaluate_on))
            model = replace(model, provenance={**model.provenance, "held_out": held_out})
    except (OSError, ValueError, OutcomesFileError) as exc:
        print(f"churnwatch calibrate: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(model_to_json(model))
    print("\n".join(result.summary))
    if args.evaluate_on is not None:
        h = model.provenance["held_out"]
        print(f"held out {args.evaluate_on} {h['period']}: ROC AUC {h['auc']} (after the first 28 days of data "
              f"{h['auc_after_first_28_days']}); {h['summary']}")  # fmt: skip
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0
