"""Email benchmark: messages per second to a local SMTP server, a connection per message
(what the worker did before it kept connections) against kept connections (``smtp.Pool``).

The server is aiosmtpd's Sink handler in a process of its own, so the two share only the
machine. Each round sends N approval-sized messages (about 6 KB, HTML and text) with C at
once, as the dispatcher does, first one way then the other; the median of --rounds rounds
of each is reported, and the ratio of the medians. With --starttls, the server requires
STARTTLS with a self-signed certificate made for the run (trusted through SSL_CERT_FILE), as
a real relay would; without, plain SMTP on loopback, the smallest gap there can be.

    .venv/bin/python bench/emails.py [--starttls] [--messages N] [--concurrency C] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import aiosmtplib

from signoff.worker.senders import smtp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--starttls", action="store_true")
    args = parser.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
        command += ["-l", f"127.0.0.1:{port}"]
        if args.starttls:
            cert, key = _self_signed(tmp)
            command += ["--tlscert", cert, "--tlskey", key]
            os.environ["SSL_CERT_FILE"] = cert  # what the client trusts, for this run only
        server = subprocess.Popen(command)
        try:
            _wait_for(port)
            asyncio.run(_run(port, args))
        finally:
            server.terminate()
            server.wait()


async def _run(port: int, args: argparse.Namespace) -> None:
    config = smtp.SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="starttls" if args.starttls else "none",
        username=None,
        password=None,
        sender="signoff@example.com",
        timeout=10.0,
    )

    async def one_connection_each(message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            start_tls=args.starttls,
            timeout=10.0,
        )

    how = "STARTTLS" if args.starttls else "plain SMTP"
    print(
        f"{args.messages} messages over {how}, {args.concurrency} at once, "
        f"median of {args.rounds} rounds"
    )
    rates: dict[str, list[float]] = {"a connection per message": [], "kept connections": []}
    opened = []
    for _ in range(args.rounds):
        rates["a connection per message"].append(await _rate(one_connection_each, args))
        pool = smtp.Pool(config, max_idle=args.concurrency)
        rates["kept connections"].append(await _rate(pool.send, args))
        opened.append(pool.opened)
        pool.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, median in medians.items():
        print(f"  {name:26} {median:8.0f} messages/s")
    ratio = medians["kept connections"] / medians["a connection per message"]
    print(f"  ratio                      {ratio:8.2f}x  (connections opened per round: {opened})")


async def _rate(
    send: Callable[[EmailMessage], Awaitable[object]], args: argparse.Namespace
) -> float:
    gate = asyncio.Semaphore(args.concurrency)

    async def one(n: int) -> None:
        async with gate:
            await send(_message(n))

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(args.messages)))
    return args.messages / (time.perf_counter() - started)


def _message(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "signoff@example.com"
    message["To"] = f"approver{n}@example.com"
    message["Subject"] = "Approve: apply batch 2026-11-22 for customer 42?"
    text = "6.4% of rows were flagged as anomalies (threshold: 6%).\n" * 40
    message.set_content(text)
    message.add_alternative(f"<html><body><pre>{text}</pre></body></html>", subtype="html")
    return message


def _self_signed(directory: str) -> tuple[str, str]:
    cert, key = f"{directory}/cert.pem", f"{directory}/key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    command += ["-keyout", key, "-out", cert]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the SMTP sink did not start")


if __name__ == "__main__":
    main()
