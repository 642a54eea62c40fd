"""HTTP API and web page: ``service.api:app`` (``reportsum serve``).

Endpoints (all but ``/healthz`` and the page's static shell need ``Authorization: Bearer
<REPORTSUM_API_KEY>`` when that key is set):

    POST /v1/summaries          JSON {"text", "title"?, "options"?}, a multipart upload
                                (field ``file``), or a raw text/plain or text/html body
                                -> the digest (public contract), synchronously
    POST /v1/jobs               the same body -> 202 {"id", ...} + Location; 429 when full
    GET  /v1/jobs/{id}          status, progress and, when done, the digest
    GET  /v1/jobs/{id}/events   Server-Sent Events: progress until done/failed
                                (also takes ``?token=``: EventSource cannot send headers)
    GET  /v1/jobs/{id}/text     the decoded text the digest's spans index
    POST /v1/tracks             JSON {"earlier", "later"} or a multipart upload of two files
                                (fields ``earlier``, ``later``) -> the Track, synchronously
    POST /v1/tracks/jobs        the same body -> 202, a job in the same job table
    GET  /v1/tracks/jobs/{id}   status, progress and, when done, the track
    GET  /healthz, /openapi.json, /docs, / (the web page), /static/*

Every error is JSON ``{"error": {"code", "message"}}``: 401 token, 404, 413 text over
``REPORTSUM_MAX_CHARS`` (refused from Content-Length or while streaming, before the body
is parsed), 415 unsupported upload, 422 empty or invalid body, 429 queue full, 502/504
model endpoint failed/timed out, 500 (no traceback) for anything unexpected.

One backend client per process (created in the lifespan, shared by every request and job
worker); model calls are async, and decoding or parsing large bodies runs in threads, so
concurrent requests proceed together. The pipeline's CPU-bound half (cleaning,
segmentation, features, labeller) runs in a process pool made in the lifespan
(``service.cpupool``), so a long report being segmented never holds up ``/healthz`` or
the model calls of other requests.

``reportsum serve --workers N`` runs N uvicorn worker processes on one socket, each with
its own lifespan (backend, pool of ``cores // N`` processes, job workers) over the same
SQLite job store and digest cache; a worker exits when the supervising process is gone.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import mimetypes
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from service import __version__
from service.backends import Backend, make_backend
from service.cache import DigestCache, open_cache, summarize_cached
from service.config import Settings
from service.cpupool import CpuPool, cores, exit_with_parent, start_pool
from service.errors import (
    BackendError,
    BackendTimeout,
    ConfigError,
    InputError,
    OversizedInput,
    ReplayMiss,
)
from service.ingest import read_bytes
from service.jobs import JobService, JobSettings, JobStore, QueueFull
from service.models import Digest
from service.pipeline import cached_labeller, cpu_pool, gc_tuned_for_model_calls

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The body of a request may be larger than its text: JSON escapes a CJK character as
# ``\\uXXXX`` (6 bytes), UTF-8 takes 3. A body beyond this many bytes per allowed
# character cannot hold an acceptable text, so it is refused unread.
BODY_BYTES_PER_CHAR = 6
BODY_OVERHEAD_BYTES = 64 * 1024

# Uploads: text in any encoding, or a web page (saved as .html, .shtml, .jsp, .php ...).
# Office files, PDFs, images and archives are refused with 415 rather than decoded into
# garbage: by declared type, by file name, and by their first bytes.
_BINARY_MAJOR = ("image/", "audio/", "video/", "font/", "model/")
_BINARY_SUBTYPES = re.compile(
    r"^application/(pdf|zip|gzip|x-gzip|x-tar|x-bzip2?|x-xz|x-7z-compressed|vnd\.rar|x-rar(-compressed)?|"
    r"msword|rtf|epub\+zip|vnd\.ms-.*|vnd\.openxmlformats-.*|vnd\.oasis\.opendocument\..*|vnd\.apple\..*|"
    r"x-msdownload|java-archive|wasm)$"
)
_BINARY_MAGIC = (
    b"%PDF-", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a",
    b"Rar!\x1a", b"\x1f\x8b", b"7z\xbc\xaf", b"{\\rtf", b"BZh", b"\xfd7zXZ",
)


# -- request and response models --------------------------------------------------------


class SummaryOptions(BaseModel):
    """Per-request pipeline options (each one is part of the digest cache key or bypasses it)."""

    model_config = ConfigDict(extra="forbid")

    chunk_tokens: int | None = Field(None, ge=100, le=32_000, description="token budget of one chunk")
    strategy: Literal["learned", "context"] | None = Field(
        None, description="context: the model reads each chunk, labels and summarizes every unit; "
                          "learned: the learned labeller decides (default: the server's, by backend)")
    no_cache: bool = Field(False, description="run the pipeline even if this digest is cached")


class SummaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the article; span offsets in the digest index this string")
    title: str | None = Field(None, description="overrides the title found in the text")
    options: SummaryOptions | None = None


class TrackRequest(BaseModel):
    """Two reports for ``POST /v1/tracks``: spans in the track index these strings."""

    model_config = ConfigDict(extra="forbid")

    earlier: str = Field(description="the earlier report, which set the year's targets and tasks")
    later: str = Field(description="the later report, which reviews that year")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class JobAccepted(BaseModel):
    id: str
    status: str
    location: str
    events: str


class JobProgress(BaseModel):
    done: int
    total: int


class JobView(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    status: str = Field(description="queued, running, done or failed")
    progress: JobProgress
    title: str | None = None
    attempts: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    cached: bool | None = None
    digest: Digest | None = None
    error: ErrorBody | None = None


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        super().__init__(message)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        401: "missing or wrong bearer token",
        413: "text over REPORTSUM_MAX_CHARS",
        415: "unsupported upload or content type",
        422: "empty or invalid body",
        502: "the model endpoint failed",
        504: "the model endpoint timed out",
    }.items()
}

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SummaryRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "UTF-8, GB18030 (BOM optional) text or an HTML page"},
                        "text": {"type": "string", "description": "instead of file"},
                        "title": {"type": "string"},
                        "options": {"type": "string", "description": "SummaryOptions as JSON"},
                    },
                }
            },
            "text/plain": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}


# -- reading a submission ------------------------------------------------------------------


@dataclass
class Submission:
    text: str
    title: str | None
    options: SummaryOptions
    source: str | None

    def params(self) -> dict[str, Any]:
        """What a job stores besides the text (enough to rebuild the submission)."""
        return {"title": self.title, "options": self.options.model_dump(exclude_defaults=True), "source": self.source}

    @classmethod
    def from_params(cls, text: str, params: dict[str, Any]) -> Submission:
        return cls(text, params.get("title"), SummaryOptions(**params.get("options", {})), params.get("source"))


def _too_large(settings: Settings) -> ApiError:
    limit = settings.max_chars
    return ApiError(413, "too_large", f"text is over the limit of {limit:,} characters (REPORTSUM_MAX_CHARS)")


async def _read_body(request: Request, settings: Settings) -> bytes:
    """The body, refused with 413 as soon as its size shows it cannot hold an acceptable text
    (from Content-Length before reading anything, else while streaming)."""
    limit = settings.max_chars * BODY_BYTES_PER_CHAR + BODY_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(settings)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(settings)
        chunks.append(chunk)
    return b"".join(chunks)


def _validation_message(exc: ValidationError | RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request body"


def _parse_json_body(body: bytes) -> SummaryRequest:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_body", f"body is not valid JSON: {exc}") from None
    try:
        return SummaryRequest.model_validate(payload)
    except ValidationError as exc:
        raise ApiError(422, "invalid_body", _validation_message(exc)) from None


def _parse_options(raw: Any) -> SummaryOptions:
    if raw in (None, ""):
        return SummaryOptions()
    try:
        return SummaryOptions.model_validate_json(raw) if isinstance(raw, str) else SummaryOptions()
    except ValidationError as exc:
        raise ApiError(422, "invalid_body", "options: " + _validation_message(exc)) from None


def _check_upload(upload: UploadFile, head: bytes) -> None:
    name = upload.filename or "upload"
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    guessed = mimetypes.guess_type(name)[0] or ""
    for kind in (ctype, guessed):
        if kind.startswith(_BINARY_MAJOR) or _BINARY_SUBTYPES.match(kind):
            raise ApiError(415, "unsupported_media_type",
                           f"{name}: {kind} is not supported; upload plain text (UTF-8 or GB18030) or an HTML page")
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if head.startswith(_BINARY_MAGIC) or (not utf16 and b"\x00" in head[:8192]):
        raise ApiError(415, "unsupported_media_type",
                       f"{name}: binary file; upload plain text (UTF-8 or GB18030) or an HTML page")


async def _form(request: Request, body: bytes, max_files: int):
    """The multipart form of a body already read (its size was checked before parsing)."""
    async def chunks() -> AsyncIterator[bytes]:
        yield body
        yield b""

    try:
        return await MultiPartParser(request.headers, chunks(), max_files=max_files,
                                     max_part_size=len(body) + 1).parse()
    except MultiPartException as exc:
        raise ApiError(422, "invalid_body", f"malformed multipart body: {exc.message}") from None


async def _parse_multipart(request: Request, body: bytes) -> tuple[str, str | None, SummaryOptions, str | None]:
    form = await _form(request, body, max_files=1)
    try:
        title = form.get("title")
        title = title.strip() or None if isinstance(title, str) else None
        options = _parse_options(form.get("options"))
        upload = form.get("file")
        if upload is None:
            upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if isinstance(upload, UploadFile):
            data = await upload.read()
            _check_upload(upload, data[:8192])
            source = upload.filename or "upload"
            text = await run_in_threadpool(read_bytes, data, source)
            return text, title, options, source
        text = form.get("text")
        if isinstance(text, str):
            return text, title, options, None
        raise ApiError(422, "invalid_body", "multipart body needs a 'file' upload or a 'text' field")
    finally:
        await form.close()


async def read_submission(request: Request) -> Submission:
    """Body -> Submission, or ApiError/InputError with the status the client should see."""
    settings: Settings = request.app.state.settings
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_body(request, settings)
    if not body:
        raise ApiError(422, "invalid_body", "request body is empty")
    title: str | None = None
    options = SummaryOptions()
    source: str | None = None
    if ctype == "application/json" or ctype.endswith("+json"):
        req = await run_in_threadpool(_parse_json_body, body) if len(body) > 65536 else _parse_json_body(body)
        text, title, options = req.text, req.title, req.options or SummaryOptions()
    elif ctype == "multipart/form-data":
        text, title, options, source = await _parse_multipart(request, body)
    elif ctype in ("text/plain", "text/html", "application/xhtml+xml"):
        text = await run_in_threadpool(read_bytes, body, "request body")
    else:
        shown = ctype or "no Content-Type"
        raise ApiError(415, "unsupported_media_type",
                       f"{shown} is not supported; send application/json, multipart/form-data, text/plain or text/html")
    if not text.strip():
        raise ApiError(422, "invalid_input", "text is empty")
    if len(text) > settings.max_chars:
        raise _too_large(settings)
    return Submission(text=text, title=title, options=options, source=source)


# -- tracks: two reports in, a Track out ------------------------------------------------------

TRACK_JOB = "track"  # params["kind"] of a track job in the shared job table

_TRACK_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/TrackRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string", "format": "binary",
                               "description": f"the {name} report: UTF-8, GB18030 (BOM optional) text or an HTML "
                                              f"page; or a text field of that name"}
                        for name in ("earlier", "later")
                    },
                    "required": ["earlier", "later"],
                }
            },
        },
    }
}


@dataclass
class TrackSubmission:
    earlier: str
    later: str
    sources: tuple[str | None, str | None] = (None, None)

    def params(self) -> dict[str, Any]:
        """A job stores the earlier report as its text, the rest here."""
        return {"kind": TRACK_JOB, "later": self.later, "sources": list(self.sources)}

    @classmethod
    def from_params(cls, text: str, params: dict[str, Any]) -> TrackSubmission:
        e_src, l_src = params.get("sources") or (None, None)
        return cls(text, params["later"], (e_src, l_src))


async def _track_part(form: Any, name: str) -> tuple[str, str | None] | None:
    """One report of a multipart body: a file upload (decoded like /v1/summaries' upload)
    or a text field."""
    value = form.get(name)
    if isinstance(value, UploadFile):
        data = await value.read()
        _check_upload(value, data[:8192])
        source = value.filename or name
        return await run_in_threadpool(read_bytes, data, source), source
    if isinstance(value, str):
        return value, None
    return None


async def read_track_submission(request: Request) -> TrackSubmission:
    """Body -> TrackSubmission (JSON or two uploads), or the ApiError/InputError to answer."""
    settings: Settings = request.app.state.settings
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:  # a body holds two reports: twice one text's room
        body = await _read_body(request, settings.model_copy(update={"max_chars": 2 * settings.max_chars}))
    except ApiError as exc:
        raise _too_large(settings) if exc.code == "too_large" else exc from None
    if not body:
        raise ApiError(422, "invalid_body", "request body is empty")
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            req = await run_in_threadpool(TrackRequest.model_validate_json, body)
        except ValidationError as exc:
            raise ApiError(422, "invalid_body", _validation_message(exc)) from None
        sub = TrackSubmission(req.earlier, req.later)
    elif ctype == "multipart/form-data":
        sub = await _parse_track_multipart(request, body)
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"{ctype or 'no Content-Type'} is not supported; send application/json {{earlier, later}} "
                       "or multipart/form-data with two files 'earlier' and 'later'")
    for which, text in (("earlier", sub.earlier), ("later", sub.later)):
        if not text.strip():
            raise ApiError(422, "invalid_input", f"the {which} report is empty")
        if len(text) > settings.max_chars:
            raise _too_large(settings)
    return sub


async def _parse_track_multipart(request: Request, body: bytes) -> TrackSubmission:
    form = await _form(request, body, max_files=2)
    try:
        earlier, later = await _track_part(form, "earlier"), await _track_part(form, "later")
        if earlier is None or later is None:
            raise ApiError(422, "invalid_body", "multipart body needs two reports: fields 'earlier' and 'later' "
                                                "(file uploads or text)")
        return TrackSubmission(earlier[0], later[0], (earlier[1], later[1]))
    finally:
        await form.close()


async def track_submission(state: Any, sub: TrackSubmission, progress: Any = None) -> Any:
    """The Track of a submission: both reports read in a thread (CPU-bound), then a model
    reads the candidates when the server has an endpoint (as ``reportsum track``)."""
    from service import track as tracking

    settings: Settings = state.settings
    # read once per file, and off the loop: parsing the parameters takes ~0.1 s
    labeller = await run_in_threadpool(cached_labeller, settings.labeller)
    if settings.resolved_backend() == "local":  # no endpoint: retrieval and figures decide
        return await run_in_threadpool(tracking.track, sub.earlier, sub.later, labeller=labeller,
                                       sources=sub.sources)
    prepared = await run_in_threadpool(tracking.prepare, sub.earlier, sub.later, labeller, sub.sources)
    return await tracking.read_with_model(prepared, state.backend, concurrency=settings.concurrency,
                                          progress=progress)


# -- auth -------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="REPORTSUM_API_KEY, when the server sets one")


def _check_token(request: Request, token: str | None) -> None:
    key: str | None = request.app.state.settings.api_key
    if not key:
        return
    # Constant-time: the comparison must not reveal how much of a guess was right.
    if token is None or not hmac.compare_digest(token.encode("utf-8"), key.encode("utf-8")):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <key>)",
                       headers={"WWW-Authenticate": "Bearer"})


def require_key(request: Request, creds: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:
    _check_token(request, creds.credentials if creds else None)


def require_key_or_query(request: Request, creds: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:
    """For the events stream only: a browser's EventSource cannot set headers."""
    _check_token(request, creds.credentials if creds else request.query_params.get("token"))


# -- the app ------------------------------------------------------------------------------


class _State:
    """What the lifespan creates once per process."""

    settings: Settings
    backend: Backend
    cache: DigestCache | None
    jobs: JobService
    pool: CpuPool | None


async def summarize_submission(state: _State, sub: Submission, progress: Any = None) -> tuple[Digest, bool]:
    settings = state.settings
    update = sub.options.model_dump(exclude_defaults=True)
    if update:
        settings = settings.model_copy(update=update)
    with cpu_pool(state.pool):
        digest, cached = await summarize_cached(
            sub.text, state.backend, settings, cache=state.cache, source=sub.source, progress=progress
        )
    if sub.title:
        digest = digest.model_copy(update={"doc": digest.doc.model_copy(update={"title": sub.title})})
    return digest, cached


def create_app(
    settings: Settings | None = None,
    *,
    backend: Backend | None = None,
    job_settings: JobSettings | None = None,
    cpu_workers: int | None = None,
) -> FastAPI:
    """The app. ``backend`` injects a ready backend (tests); by default the lifespan builds
    one from ``settings`` with ``make_backend`` and closes it on shutdown. ``cpu_workers``:
    processes in the pipeline's CPU pool (default: one per core; 0: no pool, the pipeline
    runs on the event loop)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: _State = app.state.reportsum
        state.backend = backend if backend is not None else await asyncio.to_thread(make_backend, settings)
        state.cache = open_cache(settings)
        state.pool = start_pool(cpu_workers, settings.labeller) if cpu_workers != 0 else None
        try:
            if state.pool is not None:
                await asyncio.to_thread(state.pool.warm)
            store = JobStore(settings.db)
        except BaseException:
            if state.pool is not None:
                state.pool.shutdown(wait=False, cancel_futures=True)
            raise

        async def run_job(text: str, params: dict[str, Any], progress: Any) -> tuple[Digest, bool]:
            if params.get("kind") == TRACK_JOB:  # POST /v1/tracks/jobs: the same store, another runner
                return await track_submission(state, TrackSubmission.from_params(text, params), progress), False  # type: ignore[return-value]
            return await summarize_submission(state, Submission.from_params(text, params), progress)

        state.jobs = JobService(store, run_job, job_settings or JobSettings())
        await state.jobs.start()
        try:
            with gc_tuned_for_model_calls():
                yield
        finally:
            await state.jobs.stop()
            if state.pool is not None:
                await asyncio.to_thread(state.pool.shutdown, wait=True, cancel_futures=True)
            store.close()
            if state.cache is not None:
                state.cache.close()
            if backend is None:
                await state.backend.aclose()

    app = FastAPI(
        title="reportsum",
        version=__version__,
        summary="Structured digests of Chinese government work reports: achievements, problems, plans, "
        "each with verbatim evidence and its span in the input.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    state = _State()
    state.settings = settings
    state.pool = None
    app.state.reportsum = state
    app.state.settings = settings
    _add_error_handlers(app)
    _add_routes(app, state)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request body models, which the routes read by hand (JSON or
    multipart) and so do not declare as parameters."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        body = SummaryRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(body.pop("$defs", {}))
        schemas["SummaryRequest"] = body
        schemas["TrackRequest"] = TrackRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        app.openapi_schema = schema
    return app.openapi_schema


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(OversizedInput)
    async def oversized(request: Request, exc: OversizedInput) -> JSONResponse:
        return _error(413, "too_large", str(exc))

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return _error(422, "invalid_input", str(exc))

    @app.exception_handler(BackendTimeout)
    async def backend_timeout(request: Request, exc: BackendTimeout) -> JSONResponse:
        log.warning("model endpoint timed out: %s", exc)
        return _error(504, "backend_timeout", str(exc) or "the model endpoint timed out")

    @app.exception_handler(BackendError)
    async def backend_error(request: Request, exc: BackendError) -> JSONResponse:
        log.warning("model endpoint failed: %s", exc)
        return _error(502, "backend_error", str(exc) or "the model endpoint failed")

    @app.exception_handler(ReplayMiss)
    async def replay_miss(request: Request, exc: ReplayMiss) -> JSONResponse:
        return _error(502, "replay_miss", str(exc))

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        log.error("configuration error: %s", exc)
        return _error(500, "config_error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_body", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, codes.get(exc.status_code, f"http_{exc.status_code}"), str(exc.detail),
                      getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback here; the client gets no internals.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal", "internal server error")


def _add_routes(app: FastAPI, state: _State) -> None:
    auth = [Depends(require_key)]

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness: no token needed."""
        backend = getattr(state, "backend", None)
        return {
            "status": "ok",
            "version": __version__,
            "backend": getattr(backend, "name", None),
            "model": getattr(backend, "model", None),
        }

    @app.post(
        "/v1/summaries",
        tags=["summaries"],
        dependencies=auth,
        response_model=Digest,
        responses=_ERRORS,
        openapi_extra=_BODY_DOC,
    )
    async def create_summary(request: Request) -> Response:
        """Digest one article and return it (the public contract). The response header
        ``X-Reportsum-Cache`` says ``hit`` when it came from the digest cache."""
        sub = await read_submission(request)
        digest, cached = await summarize_submission(state, sub)
        return JSONResponse(digest.model_dump(mode="json"), headers={"X-Reportsum-Cache": "hit" if cached else "miss"})

    @app.post(
        "/v1/jobs",
        tags=["jobs"],
        dependencies=auth,
        status_code=202,
        response_model=JobAccepted,
        responses={**_ERRORS, 429: {"model": ErrorResponse, "description": "queue full; see Retry-After"}},
        openapi_extra=_BODY_DOC,
    )
    async def create_job(request: Request) -> Response:
        """Queue an article; poll ``Location`` or stream ``/events``. Survives a restart."""
        sub = await read_submission(request)
        try:
            job = await state.jobs.submit(sub.text, sub.params(), sub.title)
        except QueueFull as exc:
            raise ApiError(429, "queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        location = f"/v1/jobs/{job.id}"
        body = JobAccepted(id=job.id, status=job.status, location=location, events=f"{location}/events")
        return JSONResponse(body.model_dump(), status_code=202, headers={"Location": location})

    @app.post("/v1/tracks", tags=["tracks"], dependencies=auth, responses=_ERRORS, openapi_extra=_TRACK_BODY_DOC)
    async def create_track(request: Request) -> Response:
        """The earlier report's figured commitments and what the later report says of them
        (``reportsum track``; a model reads the candidates when the server has an endpoint).
        JSON ``{"earlier", "later"}`` or a multipart upload of two files (fields ``earlier``
        and ``later``); the response is a ``Track`` (service/track_models.py)."""
        sub = await read_track_submission(request)
        result = await track_submission(state, sub)
        return JSONResponse(result.model_dump(mode="json"))

    @app.post("/v1/tracks/jobs", tags=["tracks"], dependencies=auth, status_code=202, response_model=JobAccepted,
              responses={**_ERRORS, 429: {"model": ErrorResponse, "description": "queue full; see Retry-After"}},
              openapi_extra=_TRACK_BODY_DOC)
    async def create_track_job(request: Request) -> Response:
        """``POST /v1/tracks`` as a job, for long reports: 202 and the job's ``Location``
        (``GET /v1/tracks/jobs/{id}``: the track under ``track`` once done). The job table
        is the summaries' own: it survives a restart and completes once."""
        sub = await read_track_submission(request)
        try:
            job = await state.jobs.submit(sub.earlier, sub.params(), None)
        except QueueFull as exc:
            raise ApiError(429, "queue_full", str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        location = f"/v1/tracks/jobs/{job.id}"
        body = JobAccepted(id=job.id, status=job.status, location=location, events=f"/v1/jobs/{job.id}/events")
        return JSONResponse(body.model_dump(), status_code=202, headers={"Location": location})

    @app.get("/v1/tracks/jobs/{job_id}", tags=["tracks"], dependencies=auth,
             responses={401: _ERRORS[401], 404: {"model": ErrorResponse}})
    async def get_track_job(job_id: str) -> Response:
        """A track job: status, progress (batches of commitments read) and, when done, ``track``."""
        job = await _job_or_404(job_id)
        out = job.public()
        result = out.pop("digest", None)
        if result is not None and "items" not in result:
            raise ApiError(404, "not_found", f"job {job_id} is a summary job: GET /v1/jobs/{job_id}")
        if result is not None:
            out["track"] = result
        return JSONResponse(out)

    async def _job_or_404(job_id: str, with_digest: bool = True) -> Any:
        job = await state.jobs.get(job_id, with_digest=with_digest)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return job

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], dependencies=auth, response_model=JobView,
             responses={401: _ERRORS[401], 404: {"model": ErrorResponse}})
    async def get_job(job_id: str) -> Response:
        job = await _job_or_404(job_id)
        return JSONResponse(job.public())

    @app.get("/v1/jobs/{job_id}/text", tags=["jobs"], dependencies=auth, response_class=PlainTextResponse,
             responses={401: _ERRORS[401], 404: {"model": ErrorResponse}})
    async def get_job_text(job_id: str) -> Response:
        """The decoded input, exactly the string the digest's spans index."""
        text = await state.jobs.text(job_id)
        if text is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return PlainTextResponse(text)

    @app.get(
        "/v1/jobs/{job_id}/events",
        tags=["jobs"],
        dependencies=[Depends(require_key_or_query)],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, 401: _ERRORS[401], 404: {"model": ErrorResponse}},
    )
    async def job_events(job_id: str) -> Response:
        """Server-Sent Events: ``progress`` (data: the job without digest) while queued or
        running, then one ``done`` or ``failed``; ``: keep-alive`` comments in between."""
        await _job_or_404(job_id, with_digest=False)

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            async for job in state.jobs.watch(job_id):
                if job is None:
                    yield ": keep-alive\n\n"
                    continue
                event = job.status if job.terminal else "progress"
                yield f"event: {event}\ndata: {json.dumps(job.public(with_digest=False), ensure_ascii=False)}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="reportsum API")

    # The page and its assets hold no data and must load before the user can type a token.
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


# ``serve --workers N``: what each worker process builds its app from (set by the supervisor).
WORKER_ENV = "REPORTSUM_SERVE_WORKER"


def serve(host: str, port: int, settings: Settings, workers: int = 1) -> None:
    """Run the API with uvicorn until interrupted (``reportsum serve``); with ``workers`` > 1,
    that many processes accept on one socket, each splitting the cores for its CPU pool."""
    import uvicorn

    options: dict[str, Any] = dict(host=host, port=port, log_level="warning" if settings.quiet else "info",
                                   timeout_graceful_shutdown=10)
    if workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    # uvicorn imports the app anew in each worker: the settings (CLI flags included) travel
    # in the environment the workers inherit.
    os.environ[WORKER_ENV] = json.dumps({
        "settings": settings.model_dump(mode="json"),
        "cpu_workers": max(1, cores() // workers),
    })
    uvicorn.run("service.api:worker_app", factory=True, workers=workers, **options)


def worker_app() -> FastAPI:
    """One ``serve --workers N`` worker's app (a uvicorn factory)."""
    spec = json.loads(os.environ[WORKER_ENV])
    # a worker orphaned by a supervisor that was killed would hold the socket on its own
    exit_with_parent()
    return create_app(Settings(**spec["settings"]), cpu_workers=spec["cpu_workers"])


app = create_app()
