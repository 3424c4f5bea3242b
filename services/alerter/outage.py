"""Logging a PostgreSQL outage as it happens, not once per retry.

During an outage every delivery worker and every scheduler tick fails again; a traceback per attempt
(802 in seven minutes once) buries the one line that matters. So the loops report each failure here:
one line when the database is lost, one when it is back (with how long it was gone), and in between a
reminder at most once per ``remind_every``. A failure that is not the database keeps its traceback.
Time is passed in (monotonic seconds), so the rules are tested without waiting.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

_UNREACHABLE = (OperationalError, InterfaceError, ConnectionError, OSError, TimeoutError)


def is_database_outage(exc: BaseException) -> bool:
    """A lost or refused connection (or a DBAPI error that says so, wrapped or not: asyncpg's
    CannotConnectNowError while the server shuts down comes unwrapped from a pool checkout), as opposed to a bug
    or a bad row."""
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or _names_a_lost_server(exc.orig)):
        return True
    if type(exc).__module__.startswith("asyncpg") and _names_a_lost_server(exc):
        return True
    return isinstance(exc, _UNREACHABLE)


def _names_a_lost_server(orig: BaseException | None) -> bool:
    """asyncpg's own words for it, e.g. CannotConnectNowError, AdminShutdownError, ConnectionDoesNotExistError."""
    name = type(orig).__name__ if orig is not None else ""
    return any(word in name for word in ("Connect", "Connection", "Shutdown"))


class OutageLog:
    def __init__(self, log: logging.Logger, remind_every: float = 60.0) -> None:
        self._log = log
        self._remind_every = remind_every
        self._lost_at: float | None = None
        self._reminded_at = 0.0
        self._failures = 0

    @property
    def database_lost(self) -> bool:
        return self._lost_at is not None

    def failed(self, what: str, exc: BaseException, now: float) -> None:
        """``what`` (e.g. "delivery step") failed at ``now``."""
        if not is_database_outage(exc):
            self._log.exception("%s failed; retrying", what)
            return
        self._failures += 1
        if self._lost_at is None:
            self._lost_at = self._reminded_at = now
            self._failures = 1
            self._log.error("database lost (%s: %s); retrying quietly", type(exc).__name__, _first_line(exc))
        elif now - self._reminded_at >= self._remind_every:
            self._reminded_at = now
            self._log.warning(
                "database still unreachable after %.0f s (%d failed attempts)", now - self._lost_at, self._failures
            )

    def succeeded(self, now: float) -> None:
        if self._lost_at is not None:
            self._log.warning("database back after %.0f s (%d failed attempts)", now - self._lost_at, self._failures)
            self._lost_at = None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
