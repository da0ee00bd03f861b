"""Kept SMTP connections, against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib
import pytest

from signoff.worker.senders import smtp
from tests.mailbox import Mailbox


def config(mailbox: Mailbox) -> smtp.SmtpConfig:
    return smtp.SmtpConfig(
        host="127.0.0.1",
        port=mailbox.port,
        security="none",
        username=None,
        password=None,
        sender="signoff@example.com",
        timeout=5.0,
    )


def message(to: str) -> EmailMessage:
    sent = EmailMessage()
    sent["From"], sent["To"], sent["Subject"] = "signoff@example.com", to, "hello"
    sent.set_content("hello")
    return sent


async def test_messages_one_after_another_share_one_connection(mailbox):
    pool = smtp.Pool(config(mailbox), max_idle=4)
    for n in range(5):
        refused, _ = await pool.send(message(f"p{n}@example.com"))
        assert refused == {}
    assert pool.opened == 1
    assert [m["To"] for m in mailbox.messages] == [f"p{n}@example.com" for n in range(5)]
    pool.close()


async def test_messages_at_the_same_time_open_a_connection_each_and_keep_a_few(mailbox):
    pool = smtp.Pool(config(mailbox), max_idle=2)
    await asyncio.gather(*(pool.send(message(f"p{n}@example.com")) for n in range(4)))
    assert pool.opened == 4
    await asyncio.gather(*(pool.send(message(f"q{n}@example.com")) for n in range(2)))
    assert pool.opened == 4  # the two kept ones carried these
    assert len(mailbox.messages) == 6
    pool.close()


async def test_a_connection_idle_too_long_is_not_reused(mailbox):
    pool = smtp.Pool(config(mailbox), max_idle=4, idle_timeout=0.0)
    await pool.send(message("a@example.com"))
    await pool.send(message("b@example.com"))
    assert pool.opened == 2
    pool.close()


async def test_a_connection_the_server_dropped_is_replaced_and_the_message_sent(mailbox):
    pool = smtp.Pool(config(mailbox), max_idle=4)
    await pool.send(message("a@example.com"))
    mailbox.stop()  # drops every client
    again = Mailbox(port=mailbox.port).start()
    try:
        await pool.send(message("b@example.com"))
        assert pool.opened == 2
        assert again.wait_for("b@example.com")
    finally:
        pool.close()
        again.stop()


async def test_a_server_that_is_down_fails_the_send_and_keeps_nothing(mailbox):
    pool = smtp.Pool(config(mailbox), max_idle=4)
    mailbox.stop()
    with pytest.raises((aiosmtplib.SMTPException, OSError)):
        await pool.send(message("a@example.com"))
    again = Mailbox(port=mailbox.port).start()
    try:
        await pool.send(message("b@example.com"))
        assert pool.opened == 1
    finally:
        pool.close()
        again.stop()
