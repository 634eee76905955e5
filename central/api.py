"""Central's HTTP API: wristband histories, offline conflicts, and the open tab.

========  =====================================  ===============================================
method    path                                   answer
========  =====================================  ===============================================
GET       ``/api/health``                        200 ``{"status": "ok", "catalog_head"}``; 503
GET       ``/api/wristbands/{uid}/history``      200 :class:`~central.history.WristbandHistory`
GET       ``/api/conflicts?since=UNIX``          200 ``{"conflicts": [...]}`` with a ``sentence``
POST      ``/api/wristbands/{uid}/postings``     201 the posting; 409 ``{"code", "explanation"}``
POST      ``/api/wristbands/{uid}/payments``     201 the payment
POST      ``/api/wristbands/{uid}/timestops``    201 the time-stop
========  =====================================  ===============================================

Given the running service, the queue's routes too (``/api/queue/...`` and the ticket
status page ``/t/{ticket_id}``: :mod:`central.api_queue`).

An unknown wristband is 404; a body or uid that is not valid is 422 with the reason; a
retried write with the same ``ref`` is 200 with ``"duplicate": true`` and writes nothing.
Writes go through :mod:`central.admin_catalog` (the same checks as the CLI, the posting
authorised by the rules engine). Every request opens its own connection to the store
(the service's owner thread keeps its own), so the API can run in the service or apart.

:class:`ApiServer` runs the app with uvicorn in a daemon thread. There is no
authentication yet: listen on the loopback address (the ``[api]`` default).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from central import admin_catalog
from central.admin import CatalogInputError, normalise_uid
from central.history import wristband_history
from central.replay import conflicts, describe
from central.sqlite_store import SqliteStorage
from entrada.errors import EntradaError, StoreError
from entrada.protocol import EntityId, Uid

if TYPE_CHECKING:
    from central.service import CentralService

logger = logging.getLogger(__name__)

_UID: TypeAdapter[str] = TypeAdapter(Uid)
#: Longest wait for uvicorn to listen (or to stop).
START_TIMEOUT = 10.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PostingIn(_Body):
    """A point of sale's charge to the open tab (minor units of the site's currency)."""

    amount_minor: int = Field(gt=0, le=10**12)
    description: str = Field("", max_length=200)
    #: The point of sale's own reference: a retry with the same one writes nothing twice.
    ref: EntityId | None = None


class PaymentIn(_Body):
    amount_minor: int = Field(gt=0, le=10**12)
    method: str = Field("", max_length=32)
    ref: EntityId | None = None


class TimeStopIn(_Body):
    #: When the kiosk was tapped (Unix time); now if left out.
    at: float | None = Field(None, allow_inf_nan=False)
    ref: EntityId | None = None


class _Refusal(Exception):
    """Answer a request with ``status`` and ``body`` (raised inside handlers)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def _uid(raw: str) -> str:
    try:
        return _UID.validate_python(normalise_uid(raw))
    except ValidationError as err:
        raise _Refusal(
            422, {"detail": f"uid {raw[:40]!r} is not 8 to 20 hexadecimal digits"}
        ) from err


def create_app(
    db_path: Path,
    *,
    clock: Callable[[], float] = time.time,
    service: CentralService | None = None,
) -> FastAPI:
    """The API over the central store at ``db_path``; ``clock`` gives Unix time. With the
    running ``service``, also the queue's routes (:mod:`central.api_queue`)."""
    app = FastAPI(title="Entrada central", version="1", docs_url="/api/docs", redoc_url=None)
    if service is not None:
        from central.api_queue import queue_router

        app.include_router(queue_router(service, clock=clock))

    @contextmanager
    def reading() -> Iterator[SqliteStorage]:
        with SqliteStorage(db_path, readonly=True) as store:
            yield store

    def known(uid: str) -> None:
        with reading() as store:
            if store.wristband(uid) is None:
                raise _Refusal(404, {"detail": f"wristband {uid} is not in the catalog"})

    @app.exception_handler(_Refusal)
    def _refused(request: Request, exc: _Refusal) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(CatalogInputError)
    def _invalid(request: Request, exc: CatalogInputError) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @app.exception_handler(admin_catalog.TabRefused)
    def _tab_refused(request: Request, exc: admin_catalog.TabRefused) -> JSONResponse:
        explanation = {"key": exc.explanation.key, "params": exc.explanation.as_dict()}
        return JSONResponse({"code": exc.code, "explanation": explanation}, status_code=409)

    @app.exception_handler(EntradaError)
    def _unavailable(request: Request, exc: EntradaError) -> JSONResponse:
        # the store cannot be read or written, or no rules are published yet
        logger.warning("api %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.get("/api/health")
    def health() -> JSONResponse:
        try:
            with reading() as store:
                head = store.catalog_head()
        except StoreError as err:
            return JSONResponse({"status": "unavailable", "detail": str(err)}, status_code=503)
        return JSONResponse({"status": "ok", "catalog_head": head})

    @app.get("/api/wristbands/{uid}/history")
    def history(uid: str) -> dict[str, Any]:
        key = _uid(uid)
        with reading() as store:
            found = wristband_history(store, key)
        if not found.known:
            raise _Refusal(404, {"detail": f"wristband {key} is not known"})
        return found.as_dict()

    @app.get("/api/conflicts")
    def conflict_list(
        since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    ) -> dict[str, Any]:
        with reading() as store:
            found = conflicts(store, since)
        return {"conflicts": [{**c.as_dict(), "sentence": describe(c)} for c in found]}

    @app.post("/api/wristbands/{uid}/postings", status_code=201)
    def post(uid: str, body: PostingIn) -> JSONResponse:
        key = _uid(uid)
        known(key)
        entry = admin_catalog.post_to_tab(
            db_path,
            key,
            body.amount_minor,
            ref=body.ref,
            description=body.description,
            now=clock(),
        )
        return _written(
            entry,
            key,
            amount_minor=body.amount_minor,
            description=body.description,
            owed_minor=entry.owed_minor,
        )

    @app.post("/api/wristbands/{uid}/payments", status_code=201)
    def pay(uid: str, body: PaymentIn) -> JSONResponse:
        key = _uid(uid)
        known(key)
        entry = admin_catalog.pay_tab(
            db_path, key, body.amount_minor, ref=body.ref, method=body.method, now=clock()
        )
        return _written(
            entry,
            key,
            amount_minor=body.amount_minor,
            method=body.method,
            owed_minor=entry.owed_minor,
        )

    @app.post("/api/wristbands/{uid}/timestops", status_code=201)
    def timestop(uid: str, body: TimeStopIn) -> JSONResponse:
        key = _uid(uid)
        known(key)
        now = clock()
        at = now if body.at is None else body.at
        entry = admin_catalog.stop_time(db_path, key, at=at, ref=body.ref, now=now)
        return _written(entry, key, at=at)

    return app


def _written(entry: admin_catalog.TabEntry, uid: str, **fields: Any) -> JSONResponse:
    """The answer to a tab write: 201 Created, or 200 for a retry of the same ``ref``."""
    answer = {
        "ref": entry.ref,
        "uid": uid,
        **fields,
        "catalog_version": entry.head,
        "duplicate": entry.duplicate,
    }
    return JSONResponse(answer, status_code=200 if entry.duplicate else 201)


class ApiServer:
    """Serves ``app`` with uvicorn on ``host:port`` in a daemon thread (port 0: a free one,
    see :attr:`port` once started)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.host = host
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.port = port

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start serving; return once it listens. EntradaError if it cannot (e.g. the port
        is taken)."""
        if self._thread is not None:
            raise EntradaError("the API server is already started")
        thread = threading.Thread(target=self._serve, name="central-api", daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise EntradaError(f"the API could not listen on {self.host}:{self.port}")
            thread.join(0.02)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        logger.info("API listening on http://%s:%d/api/", self.host, self.port)

    def _serve(self) -> None:
        try:
            self._server.run()
        except SystemExit as err:  # uvicorn exits when it cannot listen (it logged why)
            logger.error("the API server stopped: exit status %s", err.code)

    def stop(self, timeout: float = START_TIMEOUT) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("the API server did not stop within %.0f s", timeout)
