"""Each rule's backtested track record, attached to the signals it raises. Pure, apart from reading the file.

The file (``CHURNWATCH_RULE_QUALITY_PATH``; the shipped default is ``rule_quality.json`` beside this module) is
written by ``churnwatch backtest --rule-quality FILE`` from a backtest on data the rules were not tuned on. A rule
is a signal type, or a signal type at one severity (which wins where both are known). The alerter routes a rule
whose lift is below its floor to no one (``CHURNWATCH_MIN_RULE_LIFT``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.signals import RuleQuality, Severity, SignalType

FORMAT = "churnwatch-rule-quality"
VERSION = 1


class RuleQualityError(ValueError):
    """The file cannot be used; the message names the file and the problem."""


def default_rule_quality_path() -> Path:
    return Path(__file__).with_name("rule_quality.json")


def rule_name(signal_type: str, severity: str | None = None) -> str:
    return signal_type if severity is None else f"{signal_type}/{severity}"


@dataclass(frozen=True)
class RuleQualityTable:
    rules: dict[str, RuleQuality] = field(default_factory=dict)

    def lookup(self, signal_type: SignalType, severity: Severity) -> RuleQuality | None:
        found = self.rules.get(rule_name(signal_type.value, severity.value))
        return found if found is not None else self.rules.get(rule_name(signal_type.value))


def rule_quality_document(rules: dict[str, RuleQuality], source: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "rules": {name: q.model_dump(mode="json") for name, q in sorted(rules.items())},
    }


def load_rule_quality(path: Path) -> RuleQualityTable:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise RuleQualityError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise RuleQualityError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise RuleQualityError(f"{path}: format: expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise RuleQualityError(f"{path}: version: {doc.get('version')!r}, this scorer reads version {VERSION}")
    rules = doc.get("rules")
    if not isinstance(rules, dict):
        raise RuleQualityError(f"{path}: rules: expected an object of rule name -> quality")
    out = {}
    for name, value in rules.items():
        signal_type = name.split("/", 1)[0]
        if signal_type not in SignalType.__members__.values():
            raise RuleQualityError(f"{path}: rules.{name}: unknown signal type {signal_type!r}")
        try:
            out[name] = RuleQuality.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RuleQualityError(f"{path}: rules.{name}.{where}: {first['msg']}") from None
    return RuleQualityTable(out)
