"""Every error leaves the server as RFC 9457 problem+json with signoff's stable ``code``.

This is the web boundary's one translation: ``errors.SignoffError`` subclasses map to their own
status and code; request validation, unknown routes and the last-resort 500 get codes too.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from signoff import errors

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


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.SignoffError, _signoff_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


async def _signoff_error(_request: Request, exc: errors.SignoffError) -> JSONResponse:
    response = problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
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
    return problem(422, errors.InvalidInput.code, errors.InvalidInput.title, detail, errors=fields)


async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    response = problem(exc.status_code, code, str(exc.detail), str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, errors.ServerError.code, errors.ServerError.title, "see the server log")
