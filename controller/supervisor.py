"""Runs a device's role runtime again and again, each time with the config it should run.

A runtime runs one config for its whole life; a new config from central means a new
runtime. :class:`Supervisor` owns that cycle, on the calling thread (the main thread under
``entrada device``, which pygame roles need):

1. At start it reads the device's own file (the bootstrap), opens the device store and,
   when a version is still staged there (the device stopped in the middle of applying it),
   rolls it back as ``config.rolled_back.interrupted``.
2. It builds the runtime with the file and the applied document laid over it (the file
   alone, logged, when the document no longer fits the file), and runs it.
3. The runtime takes central's desired configs (:meth:`ConfigSession.on_desired`): one it
   refuses is reported ``rejected``; one that changes nothing it runs is committed and
   reported ``applied`` at once; any other is staged and the runtime ends with
   ``reconfigure``.
4. The supervisor builds a runtime with the staged config and puts it on trial: for
   ``self_check_seconds`` after its start the runtime asks its role's
   :meth:`~controller.device_core.DeviceCore.self_check` once a second (from its own loop,
   never sleeping). Healthy all along: the runtime commits the version and reports it
   ``applied``. A problem, drivers that do not build, a runtime that fails: the runtime
   ends with ``roll_back`` (or raises), the supervisor rolls back to the last good config,
   builds again with it, and the ``rolled_back`` report with its reason goes out once that
   runtime is online.

The outcome of an apply is kept in the device store (:class:`ReportSlot`) until it has
been published, so a device that is offline when it commits or rolls back still reports.
Every other report is said again on every connect, when the broker hands the retained
desired config over again. A runtime's shutdown releases the relay and closes its drivers
and store before the next one is built. ``restart`` (the technicians' command) builds the
same config again; ``stop`` returns.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from controller.clock import Clock, SimClock, SystemClock
from controller.config_apply import (
    ConfigCode,
    ConfigKeeper,
    check_for,
    effective,
    load_bootstrap,
    mask_reason,
    report,
    secret_values,
)
from controller.device_core import DeviceCore, ExitReason, LogTail
from controller.settings import DeviceConfig
from controller.simchannel import SimChannel
from controller.store import DeviceStore
from entrada import config as configlib
from entrada import signing
from entrada.errors import ConfigError, StoreError
from entrada.protocol import ConfigDesired, ConfigReported

logger = logging.getLogger(__name__)

#: How long a new config is on trial after its runtime starts, s.
SELF_CHECK_SECONDS = 5.0

#: ``build(cfg, store, clock)``: the role's runtime and its simulator channel
#: (:func:`controller.daemon.build_runtime`); raises DriverError when drivers fail.
Builder = Callable[[DeviceConfig, DeviceStore, Clock], tuple[DeviceCore, SimChannel | None]]
#: Why a config on trial failed: its code and reason.
Failure = tuple[ConfigCode, str]


# ----------------------------------------------------------------- report slot


class ReportSlot:
    """The outcome of the last apply, in the device store until it is published: one
    row, replaced by a newer outcome (central keeps only the newest anyway)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS config_report (
        slot INTEGER PRIMARY KEY CHECK (slot = 1),
        report TEXT NOT NULL  -- the ConfigReported as JSON
    )
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        try:
            conn.execute(self.SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"device store: cannot create the report table: {err}") from err

    def put(self, reported: ConfigReported) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO config_report (slot, report) VALUES (1, ?)",
            (reported.model_dump_json(),),
        )

    def get(self) -> ConfigReported | None:
        row = self._conn.execute("SELECT report FROM config_report WHERE slot = 1").fetchone()
        if row is None:
            return None
        try:
            return ConfigReported.model_validate_json(row[0])
        except ValidationError as err:
            logger.error("the kept config report is unreadable, dropped: %s", err)
            self._conn.execute("DELETE FROM config_report")
            return None

    def sent(self, reported: ConfigReported) -> None:
        """``reported`` went out: forget it (unless a newer one replaced it)."""
        self._conn.execute(
            "DELETE FROM config_report WHERE report = ?", (reported.model_dump_json(),)
        )


# -------------------------------------------------------------------- session


@dataclass
class Trial:
    """A staged config being tried: healthy for ``seconds`` from the first check."""

    version: int
    seconds: float
    started: float | None = None  # monotonic, at the first check


@dataclass(frozen=True)
class ConfigStep:
    """What the runtime does after the session decided: publish ``report`` now (it is
    not kept), republish its status (``versions_changed``), end with ``exit``."""

    report: ConfigReported | None = None
    exit: ExitReason | None = None
    why: str = ""
    versions_changed: bool = False


class ConfigSession:
    """One runtime's part in applying configs, on its owner thread.

    ``running`` is the config the runtime was built with; ``trial`` is set when that is a
    staged version on trial; ``fallback`` says why the file alone runs although a version
    is applied (the document no longer fits the file)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        device_id: str,
        bootstrap: Mapping[str, Any],
        running: DeviceConfig,
        public_key: Ed25519PublicKey | None,
        *,
        trial: Trial | None = None,
        fallback: str | None = None,
    ) -> None:
        self.device_id = device_id
        self.bootstrap = bootstrap
        self.running = running
        self.public_key = public_key
        self.trial = trial
        self.fallback = fallback
        #: Why the trial failed, for the supervisor's roll back.
        self.failure: Failure | None = None
        self._deferred: ConfigDesired | None = None
        self._leaving = False
        self.rebind(conn)

    def rebind(self, conn: sqlite3.Connection) -> None:
        """Use another connection (the runtime rebuilt its store)."""
        self.keeper = ConfigKeeper(conn)
        self.reports = ReportSlot(conn)

    @property
    def version(self) -> int:
        """The config version that runs (0: the device's file alone)."""
        return 0 if self.fallback else self.keeper.applied_version

    @property
    def on_trial(self) -> bool:
        return self.trial is not None

    def describe(self) -> dict[str, Any]:
        """For the ``diagnostics`` command."""
        failed = self.keeper.failed
        return {
            "version": self.version,
            "on_trial": self.trial.version if self.trial is not None else None,
            "last_good": self.keeper.last_good.version,
            "failed": None if failed is None else failed.__dict__,
            "fallback": self.fallback,
        }

    def pending_report(self) -> ConfigReported | None:
        return self.reports.get()

    def report_sent(self, reported: ConfigReported) -> None:
        self.reports.sent(reported)

    # --------------------------------------------------------------- desired

    def on_desired(self, desired: ConfigDesired, now: float) -> ConfigStep:
        """Decide about a desired config from central (``now``: wall time)."""
        if self._leaving:
            return ConfigStep()  # a version is staged: the next runtime sees this again
        if self.trial is not None:
            # One apply at a time: a newer version waits for the end of the trial.
            newest = self._deferred.version if self._deferred is not None else 0
            if desired.version != self.trial.version and desired.version >= newest:
                self._deferred = desired
            return ConfigStep()
        verdict = check_for(self.keeper, desired, self.public_key, self.device_id, self.bootstrap)
        if self.fallback is not None and verdict.code == ConfigCode.CURRENT:
            return ConfigStep(self._misfit(desired, now))
        if not verdict.accepted:
            if verdict.state != "applied":
                logger.warning(
                    "config version %d %s: %s %s",
                    verdict.version,
                    verdict.state,
                    verdict.code,
                    verdict.reason,
                )
            return ConfigStep(verdict.report(self.device_id, now))
        assert verdict.config is not None and verdict.document is not None
        self.keeper.stage(verdict.version, verdict.document)
        if verdict.config == self.running:
            logger.info("config version %d changes nothing that runs: applied", verdict.version)
            self._commit(now)
            return ConfigStep(versions_changed=True)
        self._leaving = True
        return ConfigStep(
            exit=ExitReason.RECONFIGURE, why=f"config version {verdict.version} is staged"
        )

    def _misfit(self, desired: ConfigDesired, now: float) -> ConfigReported:
        """The version that should run no longer fits the device's file (edited since)."""
        return report(
            self.device_id,
            "rejected",
            desired.version,
            ConfigCode.REJECTED_SCHEMA,
            f"version {desired.version} does not fit this device's own file: {self.fallback}",
            now,
            hide=[self.bootstrap, desired.document],
        )

    # ----------------------------------------------------------------- trial

    def trial_step(self, problem: str | None, mono: float, now: float) -> ConfigStep:
        """One self-check of the config on trial: ``problem`` is the role's answer (None:
        healthy). Fails at the first problem; passes once healthy for the whole trial."""
        trial = self.trial
        if trial is None:
            return ConfigStep()
        if problem is not None:
            self.trial = None
            self._leaving = True
            self.failure = (ConfigCode.ROLLED_BACK_SELF_CHECK, problem)
            logger.error("config version %d failed its self-check: %s", trial.version, problem)
            return ConfigStep(exit=ExitReason.ROLL_BACK, why=problem)
        if trial.started is None:
            trial.started = mono
        if mono - trial.started < trial.seconds:
            return ConfigStep()
        self.trial = None
        self._commit(now)
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return ConfigStep(versions_changed=True)
        return replace(self.on_desired(deferred, now), versions_changed=True)

    def _commit(self, now: float) -> None:
        kept = self.keeper.commit()
        self.reports.put(
            report(self.device_id, "applied", kept.version, ConfigCode.APPLIED, None, now)
        )


# ----------------------------------------------------------------- supervisor


def site_key(path: Path | None) -> Ed25519PublicKey | None:
    """The site's config-signing public key, or None (every desired config refused)."""
    if path is None:
        logger.warning("no device.config_key: desired configs from central are refused")
        return None
    try:
        return signing.load_public_key(path)
    except signing.SigningError as err:
        logger.error("%s: desired configs from central are refused", err)
        return None


class Supervisor:
    """Builds and runs runtimes until stopped (see the module docstring).

    ``config_path``: the device's own file (ConfigError when it is not valid).
    ``build``: makes a runtime (default :func:`controller.daemon.build_runtime`).
    ``logs``: the log ring's tail, for the ``logs`` command. ``on_config``: called with
    each config before its runtime is built (the daemon sets the log level there)."""

    def __init__(
        self,
        config_path: str | Path,
        *,
        build: Builder | None = None,
        logs: LogTail | None = None,
        self_check_seconds: float = SELF_CHECK_SECONDS,
        on_config: Callable[[DeviceConfig], None] | None = None,
    ) -> None:
        self.path = Path(config_path)
        #: The device's own file alone.
        self.file_config = configlib.load(self.path, DeviceConfig)
        self.bootstrap = load_bootstrap(self.path)
        self.device_id = self.file_config.device.id
        self.public_key = site_key(self.file_config.device.config_key)
        self.db_path = self.file_config.device.data_dir / "device.db"
        self.self_check_seconds = self_check_seconds
        self.logs = logs
        self._build = build
        self._on_config = on_config
        self._clocks: dict[str, Clock] = {}
        #: The runtime running now (None between runtimes).
        self.runtime: DeviceCore | None = None
        #: How many runtimes were built so far.
        self.generation = 0
        self._stop_reason: str | None = None

    def request_stop(self, reason: str = "stop requested") -> None:
        """Any thread (a signal handler): end the runtime and do not build another."""
        self._stop_reason = reason
        runtime = self.runtime
        if runtime is not None:
            runtime.request_stop(reason)

    def run(self) -> None:
        """Run runtimes until stopped. DriverError: the drivers of a config that is not on
        trial (the last good one, the file) do not build."""
        failure: Failure | None = None
        starting = True
        while self._stop_reason is None:
            store = DeviceStore(self.db_path)
            try:
                keeper, slot = ConfigKeeper(store.conn), ReportSlot(store.conn)
                if starting:
                    self._recover(keeper, slot)
                    starting = False
                if failure is not None:
                    self._roll_back(keeper, slot, *failure)
                    failure = None
                trial = keeper.pending
                cfg, fallback = self._config_of(keeper, trial)
            except ConfigError as err:
                store.close()
                failure = (ConfigCode.ROLLED_BACK_APPLY_FAILED, "; ".join(err.errors))
                continue
            except BaseException:
                store.close()
                raise
            ended, failure = self._run_one(
                store, cfg, keeper.applied_version if trial else 0, fallback
            )
            if failure is None and ended == ExitReason.STOP:
                break
        logger.info("device %s: supervisor done (%s)", self.device_id, self._stop_reason or "stop")

    # ------------------------------------------------------------------ inside

    def _run_one(
        self, store: DeviceStore, cfg: DeviceConfig, trial: int, fallback: str | None
    ) -> tuple[ExitReason, Failure | None]:
        """Build and run one runtime (``trial``: the version on trial, 0: none). Returns
        how it ended and, for a config on trial that failed, why."""
        if self._on_config is not None:
            self._on_config(cfg)
        try:
            runtime, channel = self._builder()(cfg, store, self._clock(cfg))
        except Exception as err:
            store.close()
            if not trial:
                raise
            logger.error("config version %d: the drivers did not start: %s", trial, err)
            return ExitReason.ROLL_BACK, (
                ConfigCode.ROLLED_BACK_APPLY_FAILED,
                f"the drivers did not start: {err}",
            )
        session = ConfigSession(
            store.conn,
            self.device_id,
            self.bootstrap,
            cfg,
            self.public_key,
            trial=Trial(trial, self.self_check_seconds) if trial else None,
            fallback=fallback,
        )
        runtime.supervise(session, self.logs)
        self.generation += 1
        self.runtime = runtime
        if self._stop_reason is not None:  # a stop that came between two runtimes
            runtime.request_stop(self._stop_reason)
        if trial:
            logger.info("config version %d on trial for %.1f s", trial, self.self_check_seconds)
        try:
            if channel is not None:
                channel.start()
            runtime.run()
        except Exception as err:
            if not trial:
                raise
            logger.exception("config version %d: the runtime failed", trial)
            return ExitReason.ROLL_BACK, (
                ConfigCode.ROLLED_BACK_APPLY_FAILED,
                f"the runtime failed: {err}",
            )
        finally:
            runtime.shutdown()  # after a failed start; otherwise done already
            if channel is not None:
                channel.stop()
            self.runtime = None
        if self._stop_reason is not None:
            if session.on_trial:
                logger.warning(
                    "stopped with config version %d on trial: it is rolled back at the next start",
                    trial,
                )
            return ExitReason.STOP, None
        if runtime.exit_reason == ExitReason.ROLL_BACK:
            failure = session.failure or (ConfigCode.ROLLED_BACK_SELF_CHECK, "self-check failed")
            return ExitReason.ROLL_BACK, failure
        return runtime.exit_reason, None

    def _builder(self) -> Builder:
        if self._build is None:
            from controller.daemon import build_runtime

            self._build = build_runtime
        return self._build

    def _clock(self, cfg: DeviceConfig) -> Clock:
        """One clock per kind for the whole process: a moved sim clock stays moved."""
        kind = cfg.device.clock
        if kind not in self._clocks:
            self._clocks[kind] = (
                SimClock.on_time_line(cfg.simtime) if kind == "sim" else SystemClock()
            )
        return self._clocks[kind]

    def _now(self) -> float:
        return self._clock(self.file_config).time()

    def _config_of(self, keeper: ConfigKeeper, trial: bool) -> tuple[DeviceConfig, str | None]:
        """The config to build and, when the file runs alone instead, why. ConfigError
        for a staged version that does not fit (it is then rolled back)."""
        applied = keeper.applied
        if applied.version == 0:
            return self.file_config, None
        try:
            return effective(self.bootstrap, applied.document), None
        except ConfigError as err:
            if trial:
                raise
            why = mask_reason(
                "; ".join(err.errors), secret_values(self.bootstrap, applied.document)
            )
            logger.error(
                "config version %d does not fit this device's file any more; running the "
                "file alone: %s",
                applied.version,
                why,
            )
            return self.file_config, why

    def _recover(self, keeper: ConfigKeeper, slot: ReportSlot) -> None:
        failed = keeper.recover(
            ConfigCode.ROLLED_BACK_INTERRUPTED,
            "the device stopped while applying it; it is not tried again",
        )
        if failed is not None:
            slot.put(
                report(
                    self.device_id,
                    "rolled_back",
                    failed.version,
                    failed.code,
                    failed.reason,
                    self._now(),
                )
            )

    def _roll_back(
        self, keeper: ConfigKeeper, slot: ReportSlot, code: ConfigCode, reason: str
    ) -> None:
        tried = keeper.applied
        reason = mask_reason(reason, secret_values(self.bootstrap, tried.document))
        if keeper.pending:
            keeper.roll_back(code, reason)
        slot.put(report(self.device_id, "rolled_back", tried.version, code, reason, self._now()))
