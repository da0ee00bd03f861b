"""Inbox benchmark: how fast are the portal's inbox queries with a million approvals?

One command. It fills a database with ``--approvals`` approvals (1,000,000 by default;
bulk inserts through ``store.approvals.insert_approvals``, 10,000 a transaction) of 20
requesters, 50 teams and 30 labels, 5% pending, then times each inbox query through the
service the page calls (``services.inbox.list_inbox``: one page of 25 and the capped counts
per status), as a member of 2 teams (who sees about 4% of the approvals) and as an admin
(who sees all). Each is run ``--repeat`` times; the median and the slowest are printed.

The data's titles are three of 11 words and a customer number, so a word is in about a
quarter of the titles (a "common word": more than the title index returns, so the search
walks the deadline order), while "customer 4242" is in about 120 (4242 and 42420 to 42429:
a "rare" text, found in the index).

Baselines in the same run: one approval read by primary key (the floor of any query), and
an unbounded, unindexed title search over every row (what a text search would cost with
neither the index nor the bound; see ``store/inbox.py``).

    .venv/bin/python bench/inbox.py [--approvals N] [--repeat N] [--postgres URL [--reuse]]
                                    [--keep PATH]

SQLite goes to a temporary file (or ``--keep PATH``, reused when it is already filled).
``--postgres URL`` names a database the run may wipe: its schema is dropped and made anew
(``--reuse``: kept, filled up to ``--approvals``).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from signoff.domain import policies
from signoff.domain.approvals import Approval, Status
from signoff.domain.policies import ApproverRef
from signoff.domain.principals import Context, Principal, Role, Team, User, UserKind
from signoff.services import inbox
from signoff.store import approvals as approvals_store
from signoff.store import migrate
from signoff.store import principals as principals_store
from signoff.store.engine import Database
from signoff.store.tables import ApprovalRow

BATCH = 10_000
TEAMS, LABELS, REQUESTERS = 50, 30, 20
STATUSES = [Status.PENDING] * 5 + [Status.APPROVED] * 70 + [Status.REJECTED] * 15
STATUSES += [Status.EXPIRED] * 8 + [Status.CANCELED] * 2
WORDS = ["apply", "promote", "refund", "rollback", "load", "orders", "churn", "model", "batch"]
WORDS += ["backfill", "export"]
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}")
    if args.postgres:
        url = args.postgres
        if not args.reuse:
            reset_postgres(url)
    else:
        path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "inbox.db"
        url = f"sqlite:///{path}"
    db = Database(url)
    migrate.upgrade(db)
    with db.read() as session:
        present = session.scalar(select(func.count()).select_from(ApprovalRow)) or 0
    if present < args.approvals:
        fill(db, args.approvals - present, seed=present)
    member, admin, newcomer = people(db)
    report(db, member, admin, newcomer, args.repeat)
    db.dispose()
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--postgres", help="a PostgreSQL database URL this run may wipe")
    parser.add_argument("--keep", help="an SQLite file to fill (or reuse) and keep")
    parser.add_argument(
        "--reuse", action="store_true", help="PostgreSQL: keep what a previous run filled"
    )
    return parser.parse_args(argv)


def reset_postgres(url: str) -> None:
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.dispose()


def fill(db: Database, count: int, *, seed: int) -> None:
    rng = random.Random(seed)
    teams, requesters = setup_principals(db)
    started = time.perf_counter()
    made = 0
    while made < count:
        size = min(BATCH, count - made)
        rows = [
            (approval(rng, teams, requesters, seed + made + i), None, None) for i in range(size)
        ]
        with db.write() as session:
            approvals_store.insert_approvals(session, rows)
        made += size
        if made % 100_000 == 0 or made == count:
            rate = made / (time.perf_counter() - started)
            print(f"  filled {made:,} approvals ({rate:,.0f}/s)", flush=True)
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does soon after a load this size. SQLite gets no ANALYZE: signoff
        # never runs one, so its planner works without statistics, as a deployment's does.
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def setup_principals(db: Database) -> tuple[list[ApproverRef], list[str]]:
    with db.write() as session:
        existing = principals_store.find_team_by_name(session, "team-00")
        if existing is None:
            for n in range(TEAMS):
                team = Team(id=f"team_{n:02}", name=f"team-{n:02}", created_at=NOW)
                principals_store.insert_team(session, team)
            for n in range(REQUESTERS):
                principals_store.insert_user(session, user(f"usr_pipe{n:02}", f"pipeline-{n}"))
            principals_store.insert_user(session, user("usr_member", "member"))
            principals_store.insert_user(session, user("usr_admin", "admin", Role.ADMIN))
            for team_id in ("team_00", "team_01"):
                principals_store.add_member(session, team_id, "usr_member")
    teams = [ApproverRef("team", f"team_{n:02}", f"team-{n:02}") for n in range(TEAMS)]
    return teams, [f"usr_pipe{n:02}" for n in range(REQUESTERS)]


def user(user_id: str, name: str, role: Role = Role.MEMBER) -> User:
    kind = (
        UserKind.PERSON
        if role is Role.ADMIN or name in ("member", "newcomer")
        else UserKind.SERVICE
    )
    return User(user_id, f"{name}@example.com", name, role, kind, True, NOW)


def approval(
    rng: random.Random, teams: list[ApproverRef], requesters: list[str], n: int
) -> Approval:
    status = rng.choice(STATUSES)
    created = NOW - timedelta(seconds=rng.randrange(365 * 86_400))
    deadline = created + timedelta(hours=rng.choice((1, 4, 24, 72, 168)))
    if status is Status.PENDING:
        deadline = NOW + timedelta(seconds=rng.randrange(1, 30 * 86_400))
    words = " ".join(rng.sample(WORDS, 3))
    return Approval(
        id=f"ap_{n:012d}",
        title=f"{words.capitalize()} for customer {rng.randrange(100_000)}",
        body="",
        context={"n": n},
        labels=[f"label-{rng.randrange(LABELS):02}"],
        requester_id=rng.choice(requesters),
        approvers=[rng.choice(teams)],
        policy=policies.Policy(),
        status=status,
        on_timeout=policies.OnTimeout.REJECT,
        created_at=created,
        deadline_at=deadline,
        heartbeat_timeout_seconds=None,
        heartbeat_at=None,
        callback_url=None,
        outcome=None if status is Status.PENDING else {"status": status.value},
        settled_at=None if status is Status.PENDING else deadline,
    )


def people(db: Database) -> tuple[Context, Context, Context]:
    """The member, the admin, and a newcomer: a member of no team, asked nothing yet."""
    with db.write() as session:
        if principals_store.find_user(session, "usr_newcomer") is None:
            principals_store.insert_user(session, user("usr_newcomer", "newcomer"))
    with db.read() as session:
        member = principals_store.get_user(session, "usr_member")
        admin = principals_store.get_user(session, "usr_admin")
        newcomer = principals_store.get_user(session, "usr_newcomer")
        team_ids = principals_store.team_ids_of(session, member.id)
    return (
        Context(Principal(user=member, team_ids=team_ids)),
        Context(Principal(user=admin)),
        Context(Principal(user=newcomer)),
    )


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    run()  # warm the caches once
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def report(db: Database, member: Context, admin: Context, newcomer: Context, repeat: int) -> None:
    deep_member = deep_cursor(db, member, inbox.Query(status=Status.APPROVED, view=inbox.View.ALL))
    deep_admin = deep_cursor(db, admin, inbox.Query(status=Status.APPROVED, view=inbox.View.ALL))
    cases: list[tuple[str, Context, inbox.Query]] = [
        ("member: waiting for me (pending, first page)", member, inbox.Query()),
        (
            "member: all I can see, approved, first page",
            member,
            inbox.Query(view=inbox.View.ALL, status=Status.APPROVED),
        ),
        (
            "member: the same, page 41 (after 1,000 rows)",
            member,
            inbox.Query(view=inbox.View.ALL, status=Status.APPROVED, cursor=deep_member),
        ),
        (
            "member: any status, latest deadline first",
            member,
            inbox.Query(view=inbox.View.ALL, status=None, latest_first=True),
        ),
        ("member: label", member, inbox.Query(view=inbox.View.ALL, status=None, label="label-07")),
        ("member: team", member, inbox.Query(view=inbox.View.ALL, status=None, team="team-01")),
        (
            "member: requester",
            member,
            inbox.Query(view=inbox.View.ALL, status=None, requester="pipeline-3@example.com"),
        ),
        (
            "member: text, common word",
            member,
            inbox.Query(view=inbox.View.ALL, status=None, text="churn"),
        ),
        (
            "member: text, rare (one customer)",
            member,
            inbox.Query(view=inbox.View.ALL, status=None, text="customer 4242"),
        ),
        (
            "member: text, no match",
            member,
            inbox.Query(view=inbox.View.ALL, status=None, text="no such words"),
        ),
        ("admin: waiting for me (an approver of none)", admin, inbox.Query()),
        ("admin: all, pending, first page", admin, inbox.Query(view=inbox.View.ALL)),
        (
            "admin: all, approved, page 41",
            admin,
            inbox.Query(view=inbox.View.ALL, status=Status.APPROVED, cursor=deep_admin),
        ),
        (
            "admin: label + requester",
            admin,
            inbox.Query(
                view=inbox.View.ALL,
                status=None,
                label="label-07",
                requester="pipeline-3@example.com",
            ),
        ),
        ("admin: team", admin, inbox.Query(view=inbox.View.ALL, status=None, team="team-01")),
        (
            "admin: text, common word",
            admin,
            inbox.Query(view=inbox.View.ALL, status=None, text="churn"),
        ),
        (
            "admin: text, no match",
            admin,
            inbox.Query(view=inbox.View.ALL, status=None, text="no such words"),
        ),
    ]
    cases += [
        ("newcomer: waiting for me", newcomer, inbox.Query()),
        ("newcomer: all I can see, any status", newcomer, inbox.Query(view=inbox.View.ALL)),
        (
            "newcomer: label",
            newcomer,
            inbox.Query(view=inbox.View.ALL, status=None, label="label-07"),
        ),
    ]
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(ApprovalRow))
    print(
        f"\n{db.engine.dialect.name}, {total:,} approvals; median and slowest of {repeat} runs, ms"
    )
    print("| query | page + counts | page only |")
    print("|---|---:|---:|")
    for name, ctx, query in cases:
        both = timed(lambda c=ctx, q=query: inbox.list_inbox(db, c, q), repeat)
        page = timed(lambda c=ctx, q=query: page_only(db, c, q), repeat)
        print(f"| {name} | {fmt(both)} | {fmt(page)} |", flush=True)
    floor = timed(lambda: by_id(db, f"ap_{(total or 1) // 2:012d}"), repeat)
    scan = timed(lambda: unbounded_search(db), max(3, repeat // 5))
    print(f"| baseline: one approval by primary key | {fmt(floor)} | |")
    print(f"| baseline: unbounded title search over every row | {fmt(scan)} | |")


def page_only(db: Database, ctx: Context, query: inbox.Query) -> object:
    return inbox.list_inbox(db, ctx, query, with_counts=False)


def deep_cursor(db: Database, ctx: Context, query: inbox.Query) -> str | None:
    cursor = None
    for _ in range(40):
        cursor = inbox.list_inbox(
            db, ctx, replace(query, cursor=cursor), with_counts=False
        ).page.next_cursor
    return cursor


def by_id(db: Database, approval_id: str) -> object:
    with db.read() as session:
        return approvals_store.get_approval(session, approval_id)


def unbounded_search(db: Database) -> object:
    """Every title tested: ILIKE, which PostgreSQL's index on ``lower(title)`` does not
    serve (SQLite has no index on titles outside its FTS5 table)."""
    with db.read() as session:
        return session.scalar(
            select(func.count()).where(ApprovalRow.title.ilike("%no such words%"))
        )


def fmt(timing: tuple[float, float]) -> str:
    return f"{timing[0]:,.1f} ({timing[1]:,.1f})"


if __name__ == "__main__":
    sys.exit(main())
