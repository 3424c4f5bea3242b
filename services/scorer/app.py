"""Scorer service: wires the consumer loop around the scoring core, and exposes the read API, probes, metrics."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI
from prometheus_client import Gauge

from services.scorer.api import data_problems_router, health_router
from services.scorer.evaluate import ScoringConfig
from services.scorer.partition_loop import ScorerLoop
from services.scorer.processor import ScoringProcessor
from services.scorer.risk_model import RiskModel, RiskModelError, default_model_path, load_model
from services.scorer.rule_quality import default_rule_quality_path, load_rule_quality
from services.scorer.scorecard import load_scorecard
from services.scorer.settings import ScorerSettings
from services.scorer.windows import WindowRules
from shared.api_keys import Scope
from shared.consumer_progress import scorer_group
from shared.db import build_engine, session_factory
from shared.kafka import DeadLetterPublisher
from shared.key_auth import KeyAuth, require_scope
from shared.service_app import BackgroundWorker, worker_service

log = logging.getLogger(__name__)
RISK_MODEL_FALLBACK = Gauge(
    "churnwatch_scorer_risk_model_fallback",
    "1 while the configured churn-risk model could not be used (default in use)",
)


def risk_model(settings: ScorerSettings) -> tuple[RiskModel, str | None]:
    """The configured churn-risk model, or the packaged default; with a note when it had to fall back."""
    if settings.risk_model_path is None:
        return load_model(default_model_path()), None
    try:
        return load_model(Path(settings.risk_model_path)), None
    except RiskModelError as exc:
        if not settings.risk_model_fallback:
            raise
        note = f"{exc}; using the packaged default model {default_model_path()}"
        log.error("risk model: %s", note)
        RISK_MODEL_FALLBACK.set(1)
        return load_model(default_model_path()), note


def scoring_config(settings: ScorerSettings, model: RiskModel | None = None) -> ScoringConfig:
    """Reads and validates the scorecard and the rule-quality file: a bad one stops start-up naming the problem."""
    scorecards = load_scorecard(settings.scorecard_path)
    rules = WindowRules(
        current_days=settings.current_window_days,
        baseline_days=settings.baseline_window_days,
        horizon_days=settings.horizon_days,
        grace_days=settings.grace_days,
        min_baseline_days=settings.min_baseline_days,
        key_features=scorecards.key_features,
    )
    quality = Path(settings.rule_quality_path) if settings.rule_quality_path else default_rule_quality_path()
    return ScoringConfig(rules=rules, scorecards=scorecards, rule_quality=load_rule_quality(quality), risk_model=model)


def build_loop(settings: ScorerSettings, processor: ScoringProcessor, dead_letter: DeadLetterPublisher) -> ScorerLoop:
    return ScorerLoop(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=[settings.topics.accounts, settings.topics.events],
        processor=processor,
        dead_letter=dead_letter,
        max_batch=settings.max_batch,
        checkpoint_interval_s=settings.checkpoint_interval_seconds,
        catch_up_interval_s=settings.checkpoint_catch_up_interval_seconds,
        checkpoint_events=settings.checkpoint_events,
        checkpoint_accounts=settings.checkpoint_accounts,
    )


def create_app(settings: ScorerSettings | None = None) -> FastAPI:
    settings = settings or ScorerSettings()
    model, fallback_note = risk_model(settings)
    config = scoring_config(settings, model)
    engine = build_engine(settings)
    sessions = session_factory(engine)

    def workers(producer: AIOKafkaProducer) -> list[BackgroundWorker]:
        processor = ScoringProcessor(
            topics=settings.topics,
            producer=producer,
            sessions=sessions,
            config=config,
            group_id=scorer_group(settings),
            owner=f"{socket.gethostname()}:{os.getpid()}",
            max_resident=settings.max_resident_accounts,
            sweep_interval_s=settings.sweep_interval_seconds,
            prune_interval_s=settings.dedup_prune_interval_seconds,
        )
        loop = build_loop(settings, processor, DeadLetterPublisher(producer, settings.topics.dead_letter))
        return [BackgroundWorker("scorer_loop", loop.run)]

    app = worker_service(
        title="Churnwatch scorer",
        settings=settings,
        client_id="churnwatch-scorer",
        engine=engine,
        build_workers=workers,
        notes={"risk_model": fallback_note} if fallback_note else None,
    )
    # the account list and health carry ARR, CSM emails and scores: reads need a read key or the console's token
    app.state.key_auth = KeyAuth.for_service(settings, engine)
    reader = [Depends(require_scope(Scope.READ))]
    app.include_router(health_router(sessions), dependencies=reader)
    app.include_router(data_problems_router(sessions, settings.topics.events), dependencies=reader)
    return app
