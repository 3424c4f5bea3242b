"""``churnwatch calibrate`` on a tiny simulated base: a loadable model, and the same bytes twice."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.calibrate.cli import HistoryFiles
from services.cli import main
from services.demo.history import write_history
from services.scorer.risk_model import load_model


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-base")
    write_history(out, accounts=70, days=190, start=date(2026, 1, 5), seed=77)
    return out


def _calibrate(base: Path, out: Path) -> bytes:
    files = HistoryFiles.in_dir(base)
    argv = ["calibrate", "--events", str(files.events), "--accounts", str(files.accounts)]
    argv += ["--outcomes", str(files.outcomes), "--out", str(out), "--validation-days", "100"]
    assert main(argv) == 0
    return out.read_bytes()


def test_same_data_same_bytes(tiny_base: Path, tmp_path: Path) -> None:
    first = _calibrate(tiny_base, tmp_path / "one.json")
    second = _calibrate(tiny_base, tmp_path / "two.json")
    assert first == second
    model = load_model(tmp_path / "one.json")
    assert model.horizon_days == 60
    assert model.provenance["data"]["simulated"]["seed"] == 77
    assert model.provenance["rows"] > 500
    assert 0 < model.thresholds.exit < model.thresholds.enter <= model.thresholds.critical


def test_bad_input_is_refused_with_the_file_named(tiny_base: Path, tmp_path: Path) -> None:
    bad = tmp_path / "outcomes.csv"
    bad.write_text("account,when\n")
    files = HistoryFiles.in_dir(tiny_base)
    argv = ["calibrate", "--events", str(files.events), "--accounts", str(files.accounts)]
    argv += ["--outcomes", str(bad), "--out", str(tmp_path / "m.json")]
    assert main(argv) == 2
    assert not (tmp_path / "m.json").exists()
