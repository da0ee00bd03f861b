"""Every error leaves the server as RFC 9457 problem+json with signoff's stable ``code``.

This is the web boundary's one translation: ``errors.SignoffError`` subclasses map to their own
status and code; request validation, unknown routes and the last-resort 500 get codes too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from signoff import errors, schemas

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    body |= {key: value for key, value in extra.items() if key not in body} | {"code": code}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def install(
    app: FastAPI,
    *,
    html_errors: Callable[[Request, errors.SignoffError], Awaitable[Response]] | None = None,
) -> None:
    """Answer errors as problem+json; with ``html_errors``, errors of pages a browser asked
    for (not under ``/v1/``) are rendered by it instead."""
    app.state.html_errors = html_errors
    app.add_exception_handler(errors.SignoffError, _signoff_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]


# What any operation may answer besides its success (all as problem+json); which code is
# meant is in the body's ``code`` (docs/api.md lists them).
_ANY_OPERATION = {
    400: "The body could not be read.",
    401: "No valid API key or task token.",
    403: "The caller may not do this.",
    404: "The route or the object does not exist, or the caller may not see it.",
    422: "The request is not valid; ``errors`` names each field.",
    500: "An unexpected error (logged with the request id).",
    503: "The database is unavailable.",
}
_WRITES = {409: "The change conflicts with the current state.", 413: "The body is over 1 MiB."}


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document with every operation's problem answers described as
    ``application/problem+json`` (FastAPI alone documents a 422 in a shape we never send)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
        schemas.Problem.model_json_schema()
    )
    for operations in spec.get("paths", {}).values():
        for method, operation in operations.items():
            answers = _ANY_OPERATION | (_WRITES if method in ("post", "put", "patch") else {})
            for status, description in answers.items():
                operation["responses"][str(status)] = {
                    "description": description,
                    "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        spec["components"]["schemas"].pop(unused, None)
    app.openapi_schema = spec
    return spec


async def _signoff_error(request: Request, exc: errors.SignoffError) -> Response:
    html_errors = request.app.state.html_errors
    if html_errors is not None and _is_page(request):
        return cast(Response, await html_errors(request, exc))
    response = problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith("/v1/") and "text/html" in request.headers.get(
        "accept", ""
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    fields = [
        {
            # A body that is not JSON has no field; its loc ends in a character offset.
            "field": ""
            if error["type"] == "json_invalid"
            else "/".join(str(part) for part in error["loc"] if part != "body"),
            "message": error["msg"],
        }
        for error in exc.errors()
    ]
    detail = "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields)
    html_errors = request.app.state.html_errors
    if html_errors is not None and _is_page(request):
        return cast(Response, await html_errors(request, errors.InvalidInput(detail)))
    return problem(422, errors.InvalidInput.code, errors.InvalidInput.title, detail, errors=fields)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    html_errors = request.app.state.html_errors
    if exc.status_code == 404 and html_errors is not None and _is_page(request):
        # A browser that followed a wrong link gets a page in the portal's style.
        missing = errors.NotFound("there is no page here")
        return cast(Response, await html_errors(request, missing))
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    response = problem(exc.status_code, code, str(exc.detail), str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    methods = _methods_of(request) if exc.status_code == 405 else set()
    if methods:
        # Starlette names only the first route on the path; a path has one route per method.
        response.headers["Allow"] = ", ".join(sorted(methods))
    return response


def _methods_of(request: Request) -> set[str]:
    """The methods the API documents for this request's path."""
    methods: set[str] = set()
    path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].fullmatch(path):
            methods |= {method.upper() for method in operations}
    return methods


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, errors.ServerError.code, errors.ServerError.title, "see the server log")
