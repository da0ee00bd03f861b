"""The error tree: stable, unique codes that survive the trip through problem+json."""

from __future__ import annotations

import pytest

from signoff import errors


def test_every_error_class_has_a_unique_code_and_an_http_status():
    classes = errors.all_classes()
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), codes
    assert all(400 <= cls.status < 600 for cls in classes)
    assert len(classes) > 20


@pytest.mark.parametrize("cls", errors.all_classes())
def test_a_problem_body_turns_back_into_the_same_class(cls):
    exc = cls("it went wrong", outcome={"status": "approved"})
    body = {
        "type": f"/problems/{cls.code}",
        "title": cls.title,
        "status": cls.status,
        "detail": exc.detail,
        "code": cls.code,
    }
    back = errors.from_problem(cls.status, body | exc.extra)
    assert type(back) is cls
    assert back.detail == "it went wrong"
    assert back.extra == {"outcome": {"status": "approved"}}


def test_an_unknown_code_falls_back_to_the_class_of_its_status():
    assert type(errors.from_problem(409, {"code": "from_the_future"})) is errors.Conflict
    assert type(errors.from_problem(502, {})) is errors.ServerError
