"""The inbox and an approval's page over real HTTP, signed in as a person with MFA: filters,
pages, counts, deciding without JavaScript (POST/redirect/GET), per-field errors, a late
decision, who may see what. tests/browser/test_approval_pages.py has what only a browser shows."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, select, text, update

import signoff
from signoff.store.engine import Database
from signoff.store.tables import SessionRow
from tests.conftest import RunningServer, smtp_settings
from tests.integration.test_portal import csrf, join
from tests.mailbox import Mailbox
from tests.receivers import free_port

FORM = {
    "type": "object",
    "required": ["ticket", "risk"],
    "properties": {
        "ticket": {"type": "string", "title": "Change ticket", "description": "Like CHG-123."},
        "risk": {"enum": ["low", "high"], "title": "Risk"},
        "regions": {"type": "array", "items": {"enum": ["eu", "us", "ap"]}, "title": "Regions"},
        "rollback_tested": {"type": "boolean", "title": "Rollback tested"},
        "rows": {"type": "integer", "minimum": 0, "title": "Rows affected"},
    },
}


@pytest.fixture
def settings_overrides(mailbox: Mailbox) -> dict[str, object]:
    return smtp_settings(mailbox)


@pytest.fixture
def admin(server: RunningServer) -> Iterator[signoff.Client]:
    with signoff.Client(server.url, api_key=server.admin_key) as client:
        client.people.create_team("data-owners")
        client.people.create_user("pipeline@example.com")
        yield client


@pytest.fixture
def pipeline(server: RunningServer, admin: signoff.Client) -> Iterator[signoff.Client]:
    key = admin.people.create_key(user="pipeline@example.com").key
    with signoff.Client(server.url, api_key=key) as client:
        yield client


def signed_in(
    server: RunningServer, admin: signoff.Client, email: str, role: str = "member"
) -> httpx.Client:
    """A browser (no JavaScript) of a member of data-owners who joined with MFA."""
    browser = httpx.Client(base_url=server.url, headers={"accept": "text/html"})
    sent = admin.people.invite(email, teams=["data-owners"], role=role)
    join(browser, sent.link)
    return browser


@pytest.fixture
def dana(server: RunningServer, admin: signoff.Client) -> Iterator[httpx.Client]:
    browser = signed_in(server, admin, "dana@example.com")
    yield browser
    browser.close()


def create(pipeline: signoff.Client, **fields: object) -> signoff.Approval:
    asked: dict[str, object] = {
        "title": "Apply batch 2026-11-22 for customer 42?",
        "body": "6.4% of rows were **flagged**.",
        "context": {"customer": 42, "dashboard": "https://grafana.example.com/d/1"},
        "approvers": ["team:data-owners"],
    }
    return pipeline.approvals.create(**(asked | fields))  # type: ignore[arg-type]


def titles(page: httpx.Response) -> list[str]:
    return [
        html.unescape(t)
        for t in re.findall(r'<a href="/approvals/ap_[^"]+">([^<]*)</a>', page.text)
    ]


def test_the_home_page_is_the_inbox_of_what_waits_for_me(pipeline, dana):
    create(pipeline, title="Soon", timeout="1h")
    create(pipeline, title="Later", timeout="3h")
    create(pipeline, title="Not mine", approvers=["pipeline@example.com"])
    home = dana.get("/")
    assert home.status_code == 200
    assert "Waiting for your decision" in home.text
    assert titles(home) == ["Soon", "Later"]  # the soonest deadline first
    latest = dana.get("/approvals", params={"sort": "latest"})
    assert titles(latest) == ["Later", "Soon"]
    assert re.search(r"Pending <span class=\"count\">2</span>", home.text)


def test_filters_narrow_the_inbox_and_say_when_they_name_nobody(pipeline, dana):
    create(pipeline, title="Load orders", labels=["etl"])
    create(pipeline, title="Promote churn model", labels=["ml"])
    assert titles(dana.get("/approvals", params={"label": "ml"})) == ["Promote churn model"]
    assert titles(dana.get("/approvals", params={"q": "ORDERS"})) == ["Load orders"]
    assert titles(dana.get("/approvals", params={"team": "data-owners", "q": "o"})) == [
        "Load orders",
        "Promote churn model",
    ]
    found = dana.get("/approvals", params={"requester": "pipeline@example.com", "q": "churn"})
    assert titles(found) == ["Promote churn model"]
    nobody = dana.get("/approvals", params={"team": "nobody"})
    assert titles(nobody) == []
    assert "There is no team named &#39;nobody&#39;." in nobody.text
    none = dana.get("/approvals", params={"q": "no such title"})
    assert "No approvals match these filters." in none.text
    assert 'class="count">0<' in none.text  # the title index found every match: counted
    labelled = dana.get("/approvals", params={"label": "ml"})
    assert 'class="count">1<' in labelled.text  # dana's few approvals are read by key: counted


def test_pages_follow_the_cursor_both_ways_and_new_approvals_shift_nothing(pipeline, dana):
    for n in range(30):
        create(pipeline, title=f"Approval {n:02}", timeout=f"{n + 1}h")
    first = dana.get("/approvals")
    assert titles(first) == [f"Approval {n:02}" for n in range(25)]
    next_link = html.unescape(re.search(r'href="([^"]+)" rel="next"', first.text).group(1))
    create(pipeline, title="Urgent, after the first page was read", timeout="5m")
    second = dana.get(next_link)
    assert titles(second) == [f"Approval {n:02}" for n in range(25, 30)]
    assert 'rel="next"' not in second.text
    back = html.unescape(re.search(r'href="([^"]+)" rel="prev"', second.text).group(1))
    assert titles(dana.get(back)) == [f"Approval {n:02}" for n in range(25)]


@pytest.mark.parametrize(
    "decoded",
    [["2026-01-01T00:00:00", "x"], ["0001-01-01T00:00:00+01:00", "x"], ["2026-01-01"], 5],
    ids=["without-time-zone", "out-of-range", "not-a-pair", "not-a-list"],
)
def test_a_tampered_cursor_is_a_clear_page_not_a_500(pipeline, dana, decoded):
    create(pipeline, title="One")
    token = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    for direction in ("n", "p"):
        page = dana.get("/approvals", params={"cursor": f"{direction}.{token}"})
        assert page.status_code == 422, page.status_code
        assert "The cursor is not one this server issued." in html.unescape(page.text)


def test_the_pending_count_is_the_same_on_every_status_tab(pipeline, dana):
    mine = create(pipeline, title="Decided by me, still pending", policy={"quorum": 2})
    create(pipeline, title="Waiting for me")
    page = dana.get(f"/approvals/{mine.id}")
    done = dana.post(f"/approvals/{mine.id}", data={"csrf_token": csrf(page), "verdict": "approve"})
    assert done.status_code == 303
    count = r'Pending <span class="count">(\d+)</span>'
    shown = {
        status: re.search(count, dana.get("/approvals", params={"status": status}).text).group(1)
        for status in ("", "approved", "any")
    }
    assert shown == {"": "1", "approved": "1", "any": "1"}, shown
    assert titles(dana.get("/approvals")) == ["Waiting for me"]


def test_a_long_integer_is_recorded_as_typed(pipeline, dana):
    form = {
        "type": "object",
        "required": ["change_id"],
        "properties": {"change_id": {"type": "integer", "title": "Change id"}},
    }
    approval = create(pipeline, policy={"form": form})
    page = dana.get(f"/approvals/{approval.id}")
    fields = {"csrf_token": csrf(page), "verdict": "approve", "form.change_id": "12345678901234567"}
    assert dana.post(f"/approvals/{approval.id}", data=fields).status_code == 303
    recorded = pipeline.approvals.get(approval.id).decisions[0].form
    assert recorded == {"change_id": 12345678901234567}, recorded


@pytest.mark.parametrize("text", ["NaN", "[1, Infinity]", "[" * 100_000])
def test_a_json_field_refuses_nan_and_deep_nesting_beside_the_field(pipeline, dana, text):
    form = {"type": "object", "properties": {"extra": {"title": "Anything"}}}
    approval = create(pipeline, policy={"form": form})
    page = dana.get(f"/approvals/{approval.id}")
    fields = {"csrf_token": csrf(page), "verdict": "approve", "form.extra": text}
    refused = dana.post(f"/approvals/{approval.id}", data=fields)
    assert refused.status_code == 422, refused.status_code
    assert "field takes JSON, such as" in html.unescape(refused.text)
    assert pipeline.approvals.get(approval.id).decisions == []


def test_an_unknown_requester_reads_as_no_match_except_to_an_admin(server, admin, pipeline, dana):
    create(pipeline, title="One")
    admin.people.create_user("quiet@example.com")
    pages = {
        email: dana.get("/approvals", params={"view": "all", "requester": email})
        for email in ("nobody@example.com", "quiet@example.com")
    }
    for email, page in pages.items():
        assert page.status_code == 200, email
        assert "No approvals match these filters." in page.text, email
        assert "has an account" not in page.text, email
    shown = [re.sub(r"\w+(@|%40)example\.com", "EMAIL", page.text) for page in pages.values()]
    assert shown[0] == shown[1]  # nothing tells the two apart but the address typed
    root = signed_in(server, admin, "root@example.com", role="admin")
    told = root.get("/approvals", params={"view": "all", "requester": "nobody@example.com"})
    assert "has an account" in told.text


def test_search_pages_walk_in_deadline_order_both_ways(pipeline, dana):
    for n in range(60):
        create(pipeline, title=f"{'Match' if n % 2 else 'Other'} {n:02}", timeout=f"{n + 1}h")
    matches = [f"Match {n:02}" for n in range(1, 60, 2)]
    for sort, expected in (("", matches), ("latest", matches[::-1])):
        first = dana.get("/approvals", params={"q": "match", "sort": sort})
        assert titles(first) == expected[:25]
        nxt = html.unescape(re.search(r'href="([^"]+)" rel="next"', first.text).group(1))
        second = dana.get(nxt)
        assert titles(second) == expected[25:]
        back = html.unescape(re.search(r'href="([^"]+)" rel="prev"', second.text).group(1))
        assert titles(dana.get(back)) == expected[:25]


def test_an_approval_page_shows_the_request_safely_and_its_history(pipeline, dana):
    approval = create(
        pipeline,
        body="# Why\n<script>alert(1)</script> [bad](javascript:alert(1)) [ok](https://example.com)",
        context={"run": {"id": 7, "url": "https://ci.example.com/7", "bad": "javascript:alert(1)"}},
    )
    page = dana.get(f"/approvals/{approval.id}")
    assert page.status_code == 200
    assert "<h3>Why</h3>" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'href="javascript:' not in page.text
    assert '<a href="https://example.com" rel="noopener nofollow noreferrer">ok</a>' in page.text
    assert '<a href="https://ci.example.com/7" rel="noopener nofollow noreferrer">' in page.text
    assert "One approval approves it." in page.text
    assert "opened it" in page.text
    assert "left)" in page.text  # time left to the deadline
    assert "content-security-policy" in page.headers
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_deciding_checks_each_field_then_records_the_decision_and_redirects(pipeline, dana):
    approval = create(pipeline, policy={"comment_required": True, "form": FORM})
    page = dana.get(f"/approvals/{approval.id}")
    assert 'type="checkbox" value="eu"' in page.text
    wrong = dana.post(
        f"/approvals/{approval.id}",
        data={"csrf_token": csrf(page), "verdict": "approve", "form.rows": "-1"},
    )
    assert wrong.status_code == 422
    assert 'href="#comment">Comment: A comment is required.' in wrong.text
    assert "Change ticket: This field is required." in wrong.text
    assert re.search(r'id="field-\d+"[^>]*aria-invalid="true"', wrong.text)
    done = dana.post(
        f"/approvals/{approval.id}",
        data={
            "csrf_token": csrf(wrong),
            "verdict": "approve",
            "comment": "Checked the flagged rows.",
            "form.ticket": "CHG-1",
            "form.risk": "low",
            "form.regions": ["eu", "ap"],
            "form.rows": "12",
        },
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/approvals/{approval.id}?decided=approve#outcome"
    settled = pipeline.approvals.get(approval.id)
    assert settled.status == "approved"
    assert settled.decisions[0].form == {
        "ticket": "CHG-1",
        "risk": "low",
        "regions": ["eu", "ap"],
        "rollback_tested": False,
        "rows": 12,
    }
    assert settled.decisions[0].channel == "web"
    shown = dana.get(done.headers["location"])
    assert "<strong>Approved</strong> by" in shown.text
    assert "Your decision is recorded." in shown.text
    assert "Checked the flagged rows." in shown.text
    assert 'name="verdict"' not in shown.text
    assert (
        "Your decision is recorded."
        not in dana.get(f"/approvals/{create(pipeline).id}?decided=approve").text
    )


def test_a_late_decision_says_who_decided_and_when(server, admin, pipeline, dana):
    approval = create(pipeline)
    form_page = dana.get(f"/approvals/{approval.id}")
    erin = signed_in(server, admin, "erin@example.com")
    erin_page = erin.get(f"/approvals/{approval.id}")
    erin.post(
        f"/approvals/{approval.id}",
        data={"csrf_token": csrf(erin_page), "verdict": "reject", "comment": "No."},
    )
    erin.close()
    late = dana.post(
        f"/approvals/{approval.id}", data={"csrf_token": csrf(form_page), "verdict": "approve"}
    )
    assert late.status_code == 409
    assert "Your decision was not recorded: this approval was already rejected by" in late.text
    assert re.search(r"already rejected by Dana at <time datetime=", late.text)


def test_a_post_without_the_csrf_token_decides_nothing(pipeline, dana):
    approval = create(pipeline)
    answer = dana.post(f"/approvals/{approval.id}", data={"verdict": "approve"})
    assert answer.status_code == 403
    assert pipeline.approvals.get(approval.id).status == "pending"


def test_who_already_decided_sees_the_progress_without_the_form_and_why(pipeline, dana):
    approval = create(pipeline, policy={"quorum": 2})
    page = dana.get(f"/approvals/{approval.id}")
    done = dana.post(
        f"/approvals/{approval.id}", data={"csrf_token": csrf(page), "verdict": "approve"}
    )
    shown = dana.get(done.headers["location"])
    assert "The approval stays open until more approvers decide: 1 of 2 approvals so far." in (
        shown.text
    )
    assert 'name="verdict"' not in shown.text
    assert "You cannot decide this approval: you already decided on this approval." in shown.text


def test_an_approval_one_may_not_see_is_not_found_like_one_that_does_not_exist(pipeline, dana):
    hidden = create(pipeline, approvers=["pipeline@example.com"])
    for path in (f"/approvals/{hidden.id}", "/approvals/ap_doesnotexist"):
        answer = dana.get(path)
        assert answer.status_code == 404
        assert "<h1>No such approval</h1>" in answer.text


def test_the_inbox_needs_sign_in(server):
    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as anonymous:
        answer = anonymous.get("/approvals")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/approvals"


def test_a_wrong_address_is_a_page_in_the_portals_style_and_the_api_keeps_problem_json(dana):
    page = dana.get("/no/such/page")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text
    assert "There is no page here." in page.text
    api = dana.get("/v1/no-such-route", headers={"accept": "application/json"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


def test_a_query_the_page_refuses_is_a_page_naming_the_field_not_problem_json(dana):
    page = dana.get("/approvals", params={"q": "x" * 201})
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "q: String should have at most 200 characters" in html.unescape(page.text)
    assert "Sign out" in page.text  # the signed-in navigation, as on any error page
    api = dana.get("/v1/approvals", params={"limit": "many"}, headers={"accept": "text/html"})
    assert api.headers["content-type"] == "application/problem+json"


def test_an_error_page_keeps_the_navigation_of_whoever_is_signed_in(server, admin, pipeline, dana):
    hidden = create(pipeline, approvers=["pipeline@example.com"])
    for path in ("/no/such/page", f"/approvals/{hidden.id}"):
        page = dana.get(path)
        assert page.status_code == 404
        assert navigation(page) == ["Inbox", "Dana", "Sign out"], path
        assert "signoff_session" not in page.headers.get("set-cookie", "")
    root = signed_in(server, admin, "root@example.com", role="admin")
    assert navigation(root.get("/no/such/page")) == ["Inbox", "Admin", "Dana", "Sign out"]
    root.close()

    signed_out = dana.post("/logout", data={"csrf_token": csrf(page)})  # the error page's form
    assert signed_out.status_code == 303
    assert navigation(dana.get("/no/such/page")) == []
    with httpx.Client(base_url=server.url, headers={"accept": "text/html"}) as anonymous:
        assert navigation(anonymous.get("/no/such/page")) == []
        anonymous.cookies.set("signoff_session", "not-a-session")
        assert navigation(anonymous.get("/no/such/page")) == []


def navigation(page: httpx.Response) -> list[str]:
    """What the page's header offers: its links, who is signed in, and its buttons."""
    header = re.search(r'<header class="bar">.*?</header>', page.text, re.S)
    assert header, page.text
    found = re.findall(
        r"<a [^>]*>([^<]*)</a>|<span class=\"who\">([^<]*)</span>|<button[^>]*>([^<]*)</button>",
        header.group(0),
    )
    return ["".join(parts) for parts in found][1:]  # the brand link to the home page first


def test_an_error_page_does_not_keep_a_session_alive(db, dana):
    earlier = datetime.now(UTC) - timedelta(minutes=10)  # of the hour a session may idle
    with db.write() as session:
        session.execute(update(SessionRow).values(last_seen_at=earlier))
    assert dana.get("/no/such/page").status_code == 404
    assert last_seen(db) == [earlier]
    assert dana.get("/approvals").status_code == 200  # a page seen is activity: it does
    assert last_seen(db)[0] > earlier


def last_seen(db: Database) -> list[datetime]:
    with db.read() as session:
        return [
            at if at.tzinfo else at.replace(tzinfo=UTC)
            for at in session.scalars(select(SessionRow.last_seen_at))
        ]


def test_an_error_page_renders_when_the_database_is_down(server, dana):
    with database_down(server):
        unavailable = dana.get("/approvals")
        missing = dana.get("/no/such/page")
    assert unavailable.status_code == 503, unavailable.text
    assert "<h1>The database is unavailable</h1>" in unavailable.text
    assert missing.status_code == 404, missing.text
    assert "<h1>Not found</h1>" in missing.text
    assert navigation(unavailable) == navigation(missing) == []  # who it is cannot be read
    assert navigation(dana.get("/no/such/page")) == ["Inbox", "Dana", "Sign out"]


@contextlib.contextmanager
def database_down(server: RunningServer) -> Iterator[None]:
    """The server's database refuses new connections until the block ends, and the server
    holds none open: PostgreSQL stops accepting connections to it; SQLite's file gives way to
    a directory."""
    url = make_url(server.settings.database_url)
    assert server.app is not None
    if url.get_backend_name() == "postgresql":
        maintenance = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        allow = 'ALTER DATABASE "{}" ALLOW_CONNECTIONS {}'.format
        with maintenance.connect() as conn:
            conn.execute(text(allow(url.database, "false")))
        try:
            server.app.state.runtime.db.dispose()
            yield
        finally:
            with maintenance.connect() as conn:
                conn.execute(text(allow(url.database, "true")))
            maintenance.dispose()
        return
    path = Path(str(url.database))
    away = path.with_suffix(".away")
    path.rename(away)
    path.mkdir()
    try:
        server.app.state.runtime.db.dispose()
        yield
    finally:
        path.rmdir()
        away.rename(path)


def test_an_admin_sees_every_approval_under_all_and_the_admin_link(server, admin, pipeline, dana):
    hidden = create(pipeline, title="Only the pipeline decides", approvers=["pipeline@example.com"])
    assert 'href="/admin"' not in dana.get("/approvals").text
    assert titles(dana.get("/approvals", params={"view": "all"})) == []
    root = signed_in(server, admin, "root@example.com", role="admin")
    everything = root.get("/approvals", params={"view": "all"})
    root.close()
    assert titles(everything) == [hidden.title]
    assert '<a href="/admin"' in everything.text
    assert "All approvals" in everything.text


def test_an_approval_page_shows_its_reminders_and_escalation(admin, pipeline, dana):
    admin.people.create_team("on-call")
    approval = create(
        pipeline,
        timeout="24h",
        reminders=["4h", "12h"],
        escalation={"after": "20h", "approvers": ["team:on-call"]},
    )
    page = dana.get(f"/approvals/{approval.id}")
    assert page.status_code == 200
    text = html.unescape(re.sub(r"\s+", " ", page.text))
    assert "Reminders and escalation" in text
    assert text.count("Remind whoever has not decided: scheduled") == 2
    assert "Add on-call as approvers and tell them: scheduled" in text


def test_an_approval_page_says_which_notification_is_failing(pipeline, dana):
    approval = create(pipeline, callback_url=f"http://127.0.0.1:{free_port()}/hook")
    pipeline.approvals.cancel(approval.id, reason="superseded")  # the callback fails
    deadline = time.monotonic() + 15
    while not pipeline.approvals.get(approval.id).notifications:
        assert time.monotonic() < deadline, "the callback never failed"
        time.sleep(0.1)
    page = dana.get(f"/approvals/{approval.id}")
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.text)))
    assert re.search(r"Callback delivery to http://127\.0\.0\.1:\d+/\S* failing since", text), text
    assert "approver" in text  # dana's own email is listed among the deliveries
