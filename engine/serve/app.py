"""The HTTP face of the decision service: FastAPI on uvicorn (optional extra ``serve``).

Imported only by ``fraudrules serve`` and the tests (never by the rest of the
package), so the core installs and imports without FastAPI or uvicorn.

Endpoints (JSON unless said otherwise):

- ``POST /v1/records``: one record (``{"stream": ..., "id": ..., "ts": ..., ...}``)
  or a batch (``{"records": [...]}``); answers each record's ``status``,
  ``risk_score``, ``decision``, ``rules`` and ``alerts`` after the records are
  in the write-ahead log on disk. A batch with any bad record is refused
  whole with 422 and the reasons; nothing of it is applied. A record whose
  evaluation raises (an engine bug, an input nobody foresaw) is not applied
  and not logged: it is answered ``"status": "rejected"`` with the reason
  ``evaluation error: ...`` among the others' answers (200), or with 422 when
  no record of the request could be applied.
- ``POST /v1/admin/reload``: load and check the pack again, swap if it loads.
- ``GET /metrics``: Prometheus text format.
- ``GET /healthz``: liveness, without a token.

Every endpoint but ``/healthz`` needs ``Authorization: Bearer <token>``:
401 without it, 403 with a wrong one (compared with ``hmac.compare_digest``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from ..io.convert import json_type, loads_json
from .service import DecisionService

MAX_BODY = 1 << 20  # bytes
# the request line and headers: h11 answers 400 and closes past this many bytes. uvicorn's faster parser
# (httptools) has no such bound, so the server is pinned to h11 whatever is installed
MAX_HEAD = 16 << 10
MIN_TOKEN = 16


def _json(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), status_code=status,
                    media_type="application/json", headers=headers)


class _TooLarge(Exception):
    pass


async def _read_body(request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():  # chunked bodies have no length: count as they come
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def create_app(service: DecisionService, token: str, *, max_body: int = MAX_BODY,
               manage_service: bool = True) -> FastAPI:
    """The ASGI app. ``manage_service``: start and stop the service (log, checkpoints) with the app."""
    if len(token) < MIN_TOKEN:
        raise ValueError(f"the token must have at least {MIN_TOKEN} characters")
    expected = token.encode("utf-8")
    metrics = service.metrics

    @asynccontextmanager
    async def lifespan(app) -> AsyncIterator[None]:
        if manage_service:
            await service.start()
        loop = asyncio.get_running_loop()
        hup = False
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(service.reload()))
            hup = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests), or not POSIX
            pass
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            if manage_service:
                await service.stop()

    app = FastAPI(title="fraudrules decision API", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

    def refused(request: Request, endpoint: str):
        """None when the bearer token is right; else the 401/403 answer."""
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            metrics.requests[(endpoint, 401)] += 1
            return _json({"detail": "a bearer token is required"}, 401, {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode("utf-8"), expected):
            metrics.requests[(endpoint, 403)] += 1
            return _json({"detail": "wrong token"}, 403)
        return None

    @app.get("/healthz")
    async def healthz():
        return _json({"status": "ok", "rule_pack": service.plan.digest if service.plan else None})

    @app.get("/metrics")
    async def metrics_endpoint(request: Request):
        if (no := refused(request, "metrics")) is not None:
            return no
        metrics.requests[("metrics", 200)] += 1
        wal = {"fsyncs": service.wal.fsyncs, "bytes": service.wal.bytes} if service.wal else {}
        return PlainTextResponse(metrics.render(service.gauges(), wal), media_type="text/plain; version=0.0.4")

    @app.post("/v1/admin/reload")
    async def reload(request: Request):
        if (no := refused(request, "reload")) is not None:
            return no
        result = await service.reload()
        code = 200 if not result["errors"] else 422
        metrics.requests[("reload", code)] += 1
        return _json(result, code)

    @app.post("/v1/records")
    async def records(request: Request):
        t0 = time.perf_counter()
        if (no := refused(request, "records")) is not None:
            return no

        def answer(obj: Any, code: int):
            metrics.requests[("records", code)] += 1
            metrics.request_seconds.observe(time.perf_counter() - t0)
            return _json(obj, code)

        try:
            body = await _read_body(request, max_body)
        except _TooLarge:
            return answer({"detail": f"request body larger than {max_body} bytes"}, 413)
        try:
            data = loads_json(body)
        except ValueError as exc:
            return answer({"detail": f"invalid JSON: {exc}"}, 400)
        if isinstance(data, dict) and "stream" not in data and "records" in data:
            recs, batch = data["records"], True
            if not isinstance(recs, list):  # not a record without a stream: a batch of the wrong shape
                metrics.rejects += 1
                return answer({"detail": "expected {\"records\": [...]}: records must be a list of record objects",
                               "errors": [{"index": 0, "id": None, "reason": f"records is {json_type(recs)}"}]}, 422)
        elif isinstance(data, dict):
            recs, batch = [data], False
        else:
            metrics.rejects += 1
            return answer({"detail": "expected a record object or {\"records\": [...]}",
                           "errors": [{"index": 0, "id": None, "reason": "not a JSON object"}]}, 422)
        if len(recs) > service.opts.max_batch:
            return answer({"detail": f"{len(recs)} records: a batch holds at most {service.opts.max_batch}"}, 413)
        checked = await service.admit(recs)  # after a reload that is reading the log back, if one is
        bad = checked.bad
        if bad:
            metrics.rejects += len(bad)
            return answer({"detail": f"{len(bad)} of {len(recs)} records rejected; none was applied",
                           "errors": bad}, 422)
        try:
            results = await service.submit(checked)
        except Exception as exc:  # the log failed: nothing may be acknowledged
            return answer({"detail": f"not recorded: {exc}"}, 503)
        failed = [{"index": i, "id": r["id"], "reason": r["reason"]} for i, r in enumerate(results)
                  if r["status"] == "rejected"]
        if failed and len(failed) == len(results):  # evaluation errors only: nothing of it was applied
            return answer({"detail": f"{len(failed)} of {len(recs)} records could not be evaluated; none was "
                                     f"applied", "errors": failed}, 422)
        return answer({"results": results} if batch else results[0], 200)

    return app


def run_server(service: DecisionService, token: str, host: str, port: int, *, max_body: int = MAX_BODY,
               log_level: str = "warning") -> None:
    """Recover, then serve until SIGINT/SIGTERM (a final checkpoint on the way out)."""
    import uvicorn

    app = create_app(service, token, max_body=max_body)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=10, server_header=False, http="h11",
                            h11_max_incomplete_event_size=MAX_HEAD)
    uvicorn.Server(config).run()
