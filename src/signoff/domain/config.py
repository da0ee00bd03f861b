"""``signoff.yaml``: teams, people, service accounts, named policies and subscriptions as
code.

This module reads the file into a validated document, with errors that name the line: unknown
keys are refused (a typo must not silently do nothing), ``${NAME}`` is replaced by the
environment variable ``NAME`` (so secrets, such as a webhook URL with a token, stay out of
the file), subscriptions' targets and filters are checked as the API checks them, and the
document's JSON Schema is published (``signoff config schema``) for editors to check against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from signoff import errors, schemas
from signoff.domain import subscriptions

_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
TeamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeamSpec(_Strict):
    description: str = Field(
        default="", max_length=2000, description="For people reading the file."
    )
    members: list[Email] = Field(
        default_factory=list,
        description="People in the team, by email. Someone without an account is invited "
        "(and joins when they accept); someone removed from the list leaves the team.",
    )


class PersonSpec(_Strict):
    name: str = Field(default="", max_length=200, description="Shown until they choose their own.")
    role: Literal["admin", "member"] = "member"


class KeySpec(_Strict):
    scopes: list[schemas.ScopeName] | None = Field(
        default=None, description="Default: approvals:read and approvals:write (ask, never decide)."
    )
    expires_in: int | str | None = Field(default=None, description="E.g. 90d; default never.")
    file: str | None = Field(
        default=None,
        description="Write the key here (mode 0600) when it is made; default: print it once. "
        "It is never stored in plain text by signoff.",
    )


class ServiceAccountSpec(_Strict):
    description: str = Field(default="", max_length=2000)
    teams: list[TeamName] = Field(default_factory=list)
    key: KeySpec | None = Field(default_factory=KeySpec, description="null: no key.")


class Document(_Strict):
    """The whole file."""

    version: Literal[1] = Field(default=1, description="The file format; 1 is the only one.")
    stack: Slug = Field(
        default="default",
        description="What this file manages is recorded under this name: apply and destroy "
        "touch only what a file with the same stack created.",
    )
    teams: dict[TeamName, TeamSpec] = Field(default_factory=dict)
    people: dict[Email, PersonSpec] = Field(
        default_factory=dict,
        description="Names and roles of people; each is invited if they have no account.",
    )
    service_accounts: dict[Slug, ServiceAccountSpec] = Field(default_factory=dict)
    policies: dict[Slug, schemas.PolicyReplace] = Field(default_factory=dict)
    subscriptions: dict[Slug, schemas.SubscriptionReplace] = Field(
        default_factory=dict,
        description="Where matching events go; the fields of PUT /v1/subscriptions/{name}.",
    )

    def person_emails(self) -> set[str]:
        emails = {email.lower() for email in self.people}
        for team in self.teams.values():
            emails |= {member.lower() for member in team.members}
        return emails


@dataclass(frozen=True)
class Loaded:
    document: Document
    lines: dict[tuple[str, ...], int]  # where each key path is, for messages


def json_schema() -> dict[str, Any]:
    schema = Document.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "signoff.yaml"
    return schema


def load(text: str, environ: Mapping[str, str], *, filename: str = "signoff.yaml") -> Loaded:
    """The document in ``text``; ``errors.InvalidInput`` naming file and line otherwise."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise errors.InvalidInput(f"{filename}{line}: not valid YAML: {exc}") from exc
    reader = _Reader(environ, filename)
    data = reader.value(root, ()) if root is not None else {}
    if not isinstance(data, dict):
        raise errors.InvalidInput(f"{filename}:1: the file must be a mapping of keys")
    try:
        document = Document.model_validate(data)
    except ValidationError as exc:
        raise errors.InvalidInput(_explain(exc, reader.lines, filename)) from exc
    for name, spec in document.subscriptions.items():
        _check_subscription(name, spec, reader.lines, filename)
    return Loaded(document, reader.lines)


def _check_subscription(
    name: str, spec: schemas.SubscriptionReplace, lines: dict[tuple[str, ...], int], filename: str
) -> None:
    try:
        subscriptions.normalized_target(subscriptions.Kind(spec.kind), spec.target)
        subscriptions.check_filter(spec.filter)
    except errors.InvalidInput as exc:
        field = str(exc.extra.get("field", ""))
        path = ("subscriptions", name, *re.findall(r"[^.\[\]]+", field))
        said = exc.detail if exc.detail.startswith(f"{field}:") else f"{field}: {exc.detail}"
        line = _line_of(path, lines)
        raise errors.InvalidInput(f"{filename}:{line}: subscriptions.{name}.{said}") from exc


class _Reader:
    """Plain data from a YAML node tree, noting the line of every key path on the way."""

    def __init__(self, environ: Mapping[str, str], filename: str) -> None:
        self.environ = environ
        self.filename = filename
        self.lines: dict[tuple[str, ...], int] = {}
        self._scalars = yaml.SafeLoader("")

    def value(self, node: yaml.Node, path: tuple[str, ...]) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self._scalars.construct_object(key_node))  # type: ignore[no-untyped-call]
                if key in result:
                    line = key_node.start_mark.line + 1
                    raise errors.InvalidInput(f"{self.filename}:{line}: {key!r} appears twice")
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.value(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, (*path, str(i))) for i, item in enumerate(node.value)]
        scalar = self._scalars.construct_object(node)  # type: ignore[no-untyped-call]
        if isinstance(scalar, str):
            return _substitute(scalar, self.environ, f"{self.filename}:{self.lines[path]}")
        return scalar


def _substitute(value: str, environ: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"  # $$ is a literal dollar sign
        if name not in environ:
            raise errors.InvalidInput(f"{where}: the environment variable {name} is not set")
        return environ[name]

    return _ENV_REFERENCE.sub(replace, value)


def _explain(exc: ValidationError, lines: dict[tuple[str, ...], int], filename: str) -> str:
    messages = []
    for error in exc.errors():
        path = tuple(str(part) for part in error["loc"])
        line = _line_of(path, lines)
        where = ".".join(path) or "the file"
        if error["type"] == "extra_forbidden":
            message = f"unknown key {path[-1]!r}"
        else:
            message = error["msg"]
        messages.append(f"{filename}:{line}: {where}: {message}")
    return "\n".join(messages)


def _line_of(path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)
