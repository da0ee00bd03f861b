"""Decision links over real HTTP, with each approver's email read from a real SMTP server:
what an approver does from their inbox, minus the browser (tests/browser has that)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

import signoff
from signoff.services import principals
from tests.conftest import RunningServer, smtp_settings
from tests.factories import CLI
from tests.integration.test_portal import PASSWORD, csrf, join, next_code, post
from tests.mailbox import Mailbox, html_of, text_of
from tests.receivers import Receiver

LINK = re.compile(r"https?://\S+/decide/\S+")


@pytest.fixture
def settings_overrides(mailbox: Mailbox) -> dict[str, object]:
    return smtp_settings(mailbox)


@pytest.fixture
def admin(server: RunningServer) -> Iterator[signoff.Client]:
    """An admin who made team ``data-owners`` of alice and bob, and a ``pipeline`` user."""
    with signoff.Client(server.url, api_key=server.admin_key) as client:
        client.people.create_team("data-owners")
        for name in ("alice", "bob", "pipeline"):
            client.people.create_user(f"{name}@example.com")
        for name in ("alice", "bob"):
            client.people.add_member("data-owners", f"{name}@example.com")
        yield client


@pytest.fixture
def pipeline(server: RunningServer, admin: signoff.Client) -> Iterator[signoff.Client]:
    key = admin.people.create_key(user="pipeline@example.com").key
    with signoff.Client(server.url, api_key=key) as client:
        yield client


def new_browser(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"accept": "text/html"})


@pytest.fixture
def browser(server: RunningServer) -> Iterator[httpx.Client]:
    with new_browser(server) as client:
        yield client


def links_to(mailbox: Mailbox, to: str, nth: int = 1) -> dict[str, str]:
    """The paths of the Approve and Reject links in the ``nth`` email to ``to``."""
    message = mailbox.wait_for(to, count=nth)[nth - 1]
    found = LINK.findall(text_of(message))
    assert len(found) == 2, text_of(message)
    assert ".approve." in found[0]
    assert ".reject." in found[1]
    assert all(f'href="{link}"' in html_of(message) for link in found)
    return {"approve": httpx.URL(found[0]).path, "reject": httpx.URL(found[1]).path}


def create(pipeline: signoff.Client, **fields: object) -> signoff.Approval:
    asked: dict[str, object] = {
        "title": "Apply batch 2026-11-22 for customer 42?",
        "body": "6.4% of rows were flagged.",
        "context": {"customer": 42, "flagged_ratio": 0.064},
        "approvers": ["team:data-owners"],
    }
    return pipeline.approvals.create(**(asked | fields))  # type: ignore[arg-type]


def test_each_approver_is_emailed_their_own_links_and_opening_one_decides_nothing(
    admin, pipeline, mailbox, browser
):
    approval = create(pipeline, policy={"quorum": 2})
    alices, bobs = links_to(mailbox, "alice@example.com"), links_to(mailbox, "bob@example.com")
    [message] = mailbox.wait_for("alice@example.com")
    assert message["Subject"] == "Decision needed: Apply batch 2026-11-22 for customer 42?"
    assert "  customer: 42" in text_of(message)
    assert "2 approvals approve it." in text_of(message)
    assert f"/approvals/{approval.id}" in text_of(message)
    assert alices["approve"] != bobs["approve"]
    assert all(path.startswith(f"/decide/{approval.id}.usr_") for path in alices.values())

    for _ in range(2):  # a mail scanner, then the person
        opened = browser.get(alices["approve"])
        assert opened.status_code == 200, opened.text
    assert "Approve as alice (alice@example.com)" in opened.text
    assert "6.4% of rows were flagged." in opened.text
    assert "flagged_ratio" in opened.text
    assert pipeline.approvals.get(approval.id).decisions == []

    decided = post(browser, alices["approve"], opened, comment="Checked the rows.")
    assert decided.status_code == 200, decided.text
    assert "You approved" in decided.text
    assert "stays open until more approvers decide: 1 of 2 approvals so far." in decided.text
    [decision] = pipeline.approvals.get(approval.id).decisions
    assert (decision.user, decision.verdict, decision.channel) == (
        "alice@example.com",
        "approve",
        "link",
    )
    assert decision.comment == "Checked the rows."
    [entry] = admin.people.audit(object_id=approval.id, action="approval.decide").items
    assert entry.actor == f"user:{decision.user_id}"
    assert entry.after is not None
    assert entry.after["channel"] == "link"


def test_a_used_link_and_the_other_one_say_the_approver_already_decided(pipeline, mailbox, browser):
    approval = create(pipeline, policy={"quorum": 2})
    alices = links_to(mailbox, "alice@example.com")
    opened = browser.get(alices["reject"])
    post(browser, alices["reject"], opened, comment="Too many flagged rows.")

    for path in alices.values():
        again = browser.get(path)
        assert again.status_code == 409
        assert "You already decided on this approval" in again.text
        assert re.search(r"Already decided by you at \d{4}-\d\d-\d\d \d\d:\d\d UTC", again.text)
        assert "you rejected it" in again.text
        assert re.search(r"<strong>Rejected</strong> by alice at <time datetime=", again.text)
    reposted = post(browser, alices["reject"], opened, comment="Twice?")
    assert reposted.status_code == 409
    assert pipeline.approvals.get(approval.id).status == "rejected"
    assert len(pipeline.approvals.get(approval.id).decisions) == 1


def test_deciding_by_link_settles_the_approval_and_fires_its_callback(pipeline, mailbox, browser):
    with Receiver() as receiver:
        approval = create(pipeline, callback_url=receiver.url)
        alices, bobs = links_to(mailbox, "alice@example.com"), links_to(mailbox, "bob@example.com")
        post(browser, alices["approve"], browser.get(alices["approve"]))
        [call] = receiver.wait_for(1)
    assert call.event["type"] == "approval.settled"
    assert call.event["data"]["outcome"]["decided_by"] == "alice@example.com"
    assert pipeline.approvals.get(approval.id).status == "approved"

    late = browser.get(bobs["reject"])
    assert late.status_code == 409
    assert "The approval is already decided." in late.text
    assert re.search(r"<strong>Approved</strong> by alice at <time datetime=\"\d{4}-", late.text)
    assert "6.4% of rows were flagged." in late.text  # the request, still
    assert "<textarea" not in late.text


def test_a_decision_posted_after_another_approver_settled_it_says_how_it_ended(
    server, pipeline, mailbox, browser
):
    approval = create(pipeline)
    alices, bobs = links_to(mailbox, "alice@example.com"), links_to(mailbox, "bob@example.com")
    opened = browser.get(alices["approve"])
    with new_browser(server) as bobs_browser:
        post(bobs_browser, bobs["reject"], bobs_browser.get(bobs["reject"]), comment="No.")
    late = post(browser, alices["approve"], opened, comment="Yes.")
    assert late.status_code == 409
    assert "Your decision was not recorded. <strong>The approval is already decided.</strong>" in (
        late.text
    )
    assert re.search(r"<strong>Rejected</strong> by bob at <time datetime=", late.text)
    assert [d.user for d in pipeline.approvals.get(approval.id).decisions] == ["bob@example.com"]


def test_the_link_page_shows_the_request_with_the_approval_pages_own_parts(
    admin, pipeline, mailbox, browser
):
    dana = admin.people.invite("dana@example.com", teams=["data-owners"])
    join(browser, dana.link)
    approval = create(
        pipeline,
        body="# Why\n<script>alert(1)</script> [bad](javascript:alert(1)) [ok](https://e.example)",
        context={"run": {"id": 7, "url": "https://ci.example.com/7", "bad": "javascript:x"}},
        policy={"quorum": 2},
        timeout="3h",
    )
    link = browser.get(links_to(mailbox, "dana@example.com", nth=2)["approve"])
    assert link.status_code == 200, link.text
    assert "<h3>Why</h3>" in link.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in link.text
    assert 'href="javascript:' not in link.text
    assert '<a href="https://ci.example.com/7" rel="noopener nofollow noreferrer">' in link.text
    assert re.search(r"UTC</time> \(2 hours 5\d minutes left\); then it is rejected", link.text)
    assert "Approvals</label>: 0 of 2 needed." in link.text
    own = browser.get(f"/approvals/{approval.id}")
    for part in ("request", "context", "policy"):
        assert section(link, part) == section(own, part), part


def section(page: httpx.Response, name: str) -> str:
    found = re.search(rf'<section aria-labelledby="{name}-heading">.*?</section>', page.text, re.S)
    assert found, name
    return found.group(0)


def test_a_link_past_the_deadline_has_expired(pipeline, mailbox, browser):
    approval = create(pipeline, timeout="1s")
    alices = links_to(mailbox, "alice@example.com")
    assert pipeline.approvals.wait(approval.id, timeout=15).status == "rejected"

    expired = browser.get(alices["approve"])
    assert expired.status_code == 410
    assert "This link is no longer valid" in expired.text
    assert "the approval&#39;s deadline" in expired.text
    assert "nobody decided in time, so it was rejected" in expired.text


@pytest.mark.parametrize(
    "tamper",
    [
        lambda path: path[:-1] + ("0" if path[-1] != "0" else "1"),
        lambda path: path.replace(".approve.", ".reject."),
        lambda path: path[:-10],
        lambda path: "/decide/not-a-link",
    ],
    ids=["mac", "verdict", "cut-short", "garbage"],
)
def test_a_tampered_link_is_not_found_and_decides_nothing(pipeline, mailbox, browser, tamper):
    approval = create(pipeline)
    path = tamper(links_to(mailbox, "alice@example.com")["approve"])
    answer = browser.get(path)
    assert answer.status_code == 404
    assert "This link is not valid" in answer.text
    login = browser.get("/login")
    assert browser.post(path, data={"csrf_token": csrf(login)}).status_code == 404
    assert pipeline.approvals.get(approval.id).decisions == []


def test_another_approvers_user_id_in_a_link_does_not_verify(admin, pipeline, mailbox, browser):
    create(pipeline)
    alices = links_to(mailbox, "alice@example.com")["approve"]
    bob_id = next(u.id for u in admin.people.list_users() if u.email == "bob@example.com")
    alice_id = alices.split(".")[1]
    assert browser.get(alices.replace(alice_id, bob_id)).status_code == 404


def test_a_post_without_the_pages_csrf_token_decides_nothing(pipeline, mailbox, browser):
    approval = create(pipeline)
    path = links_to(mailbox, "alice@example.com")["approve"]
    browser.get(path)
    assert browser.post(path, data={"comment": "x"}).status_code == 403
    foreign = browser.post(
        path,
        data={"csrf_token": csrf(browser.get(path))},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert pipeline.approvals.get(approval.id).decisions == []


FORM = {
    "type": "object",
    "required": ["ticket", "rows"],
    "properties": {
        "ticket": {"type": "string", "pattern": "^CHG-[0-9]+$", "title": "Change ticket"},
        "risk": {"enum": ["low", "medium", "high"]},
        "rows": {"type": "integer", "minimum": 1, "description": "How many rows to apply."},
        "dry_run": {"type": "boolean"},
    },
}


def test_a_required_comment_and_the_decision_form_are_checked_field_by_field(
    pipeline, mailbox, browser
):
    approval = create(pipeline, policy={"comment_required": True, "form": FORM})
    path = links_to(mailbox, "alice@example.com")["approve"]
    opened = browser.get(path)
    assert '<label for="field-1">Change ticket (required)</label>' in opened.text
    assert '<label for="field-2">Rows (required)</label>' in opened.text
    assert '<select id="field-4" name="form.risk"' in opened.text
    assert 'type="number" step="1"' in opened.text
    assert 'type="checkbox"' in opened.text
    assert "Comment (required)" in opened.text

    wrong = post(browser, path, opened, **{"form.ticket": "JIRA-1", "form.rows": "many"})
    assert wrong.status_code == 422
    assert 'aria-invalid="true" aria-describedby="comment-error"' in wrong.text
    assert "A comment is required." in wrong.text
    assert "does not match" in wrong.text
    assert "Enter a whole number." in wrong.text
    assert 'value="JIRA-1"' in wrong.text  # what was typed stays
    assert pipeline.approvals.get(approval.id).decisions == []

    fields = {"form.ticket": "CHG-7", "form.rows": "120", "form.risk": "low", "form.dry_run": "on"}
    done = post(browser, path, opened, comment="Ticket filed.", **fields)
    assert done.status_code == 200, done.text
    [decision] = pipeline.approvals.get(approval.id).decisions
    assert decision.form == {"ticket": "CHG-7", "rows": 120, "risk": "low", "dry_run": True}


def test_a_reject_link_asks_for_no_form(pipeline, mailbox, browser):
    approval = create(pipeline, policy={"form": FORM})
    path = links_to(mailbox, "alice@example.com")["reject"]
    opened = browser.get(path)
    assert "form.ticket" not in opened.text
    assert "Comment (optional)" in opened.text
    assert post(browser, path, opened).status_code == 200
    assert pipeline.approvals.get(approval.id).status == "rejected"


def test_the_page_shows_a_hostile_request_as_text_under_a_strict_policy(pipeline, mailbox, browser):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    create(pipeline, title=hostile, body=hostile, context={hostile: hostile})
    page = browser.get(links_to(mailbox, "alice@example.com")["approve"])
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    assert page.text.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 4
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


def test_an_approver_who_left_the_team_or_was_disabled_is_told_so(
    admin, pipeline, mailbox, browser, db
):
    create(pipeline)
    alices, bobs = links_to(mailbox, "alice@example.com"), links_to(mailbox, "bob@example.com")
    principals.remove_member(db, CLI, team="data-owners", user="bob@example.com")
    gone = browser.get(bobs["approve"])
    assert gone.status_code == 403
    assert "no longer an approver" in gone.text
    admin.people.update_user("alice@example.com", is_active=False)
    disabled = browser.get(alices["approve"])
    assert disabled.status_code == 403
    assert "disabled" in disabled.text


def test_a_disabled_approvers_link_shows_nothing_once_the_approval_is_settled(
    admin, pipeline, mailbox, browser
):
    approval = create(pipeline, body="Secret numbers: 6.4%")
    alices = links_to(mailbox, "alice@example.com")
    pipeline.approvals.cancel(approval.id, reason="not needed")
    admin.people.update_user("alice@example.com", is_active=False)
    page = browser.get(alices["approve"])
    assert page.status_code == 403
    assert "disabled" in page.text
    assert "Secret numbers" not in page.text


def test_a_link_that_needs_login_sends_its_approver_to_sign_in_and_back(
    server, admin, pipeline, mailbox, browser
):
    dana = admin.people.invite("dana@example.com", teams=["data-owners"])
    secret, _ = join(browser, dana.link)
    post(browser, "/logout", browser.get("/"))
    approval = create(pipeline, policy={"link_requires_login": True})
    path = links_to(mailbox, "dana@example.com", nth=2)["approve"]
    [message] = mailbox.wait_for("dana@example.com", count=2)[1:]
    assert "The links ask you to sign in to signoff first." in text_of(message)

    first = browser.get(path)
    assert first.status_code == 303
    assert first.headers["location"] == f"/login?next={path}"
    login = browser.get(first.headers["location"])
    assert f'<input type="hidden" name="next" value="{path}">' in login.text
    signed = post(browser, "/login", login, email="dana@example.com", password=PASSWORD, next=path)
    assert signed.headers["location"] == f"/login/code?next={path}"
    code_page = browser.get(signed.headers["location"])
    code = post(browser, "/login/code", code_page, code=next_code(secret), next=path)
    assert code.headers["location"] == path
    opened = browser.get(path)
    assert opened.status_code == 200, opened.text
    assert post(browser, path, opened).status_code == 200
    assert [d.channel for d in pipeline.approvals.get(approval.id).decisions] == ["link"]

    with new_browser(server) as stranger:  # another person's browser, not signed in
        assert stranger.get(links_to(mailbox, "alice@example.com")["approve"]).status_code == 303


def test_someone_signed_in_as_another_person_is_refused(server, admin, pipeline, mailbox, browser):
    erin = admin.people.invite("erin@example.com")
    join(browser, erin.link)
    approval = create(pipeline)
    path = links_to(mailbox, "alice@example.com")["approve"]
    refused = browser.get(path)
    assert refused.status_code == 403
    assert "signed in as erin@example.com" in refused.text
    assert post(browser, path, refused).status_code == 403  # its token is erin's session's
    assert pipeline.approvals.get(approval.id).decisions == []
    with new_browser(server) as alices_own:  # the link alone is enough on this policy
        assert alices_own.get(path).status_code == 200
