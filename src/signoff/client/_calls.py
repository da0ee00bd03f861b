"""A call: what one SDK method sends and how its answer is read, without any I/O.

Each resource describes its methods as calls once; ``Client`` and ``AsyncClient`` only differ
in how they send them. Whether to retry and what an answer becomes (a parsed model, or the
``errors.*`` class of a problem+json body) is decided here, for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from signoff import errors

T = TypeVar("T")
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)
DEFAULT_WAIT_POLL = 60.0


@dataclass
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = False


def model(cls: type[Any]) -> Callable[[Any], Any]:
    return cls.model_validate  # type: ignore[no-any-return]


def models(cls: type[Any]) -> Callable[[Any], Any]:
    return lambda data: [cls.model_validate(item) for item in data]


def result(call: Call[T], response: httpx.Response) -> T:
    if response.is_success:
        return call.parse(response.json() if response.content else None)
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500] or response.reason_phrase}
    raise errors.from_problem(response.status_code, body if isinstance(body, dict) else {})


def should_retry(call: Call[Any], attempt: int, response: httpx.Response | None) -> bool:
    if not call.retry or attempt >= len(RETRY_DELAYS):
        return False
    return response is None or response.status_code in RETRY_STATUSES
