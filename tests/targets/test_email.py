"""The e-mail target against a real SMTP server (aiosmtpd on 127.0.0.1).

The server's handler is a mailbox store as receivers run them: it keeps one copy per
``Message-ID`` and logs every DATA it accepted, so the tests can tell "sent twice"
(the crash between sending and recording) from "delivered twice" (what we must avoid).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, MIMEPart
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from adapters.targets.email import (
    EmailTarget,
    SmtpConfig,
    build_message,
    classify,
    message_id,
    parse_smtp_url,
)
from bot.errors import ConfigError, ReleaseError
from bot.ports import DeliveryRequest
from tests.process import ROOT, free_port, signoff_env

KEY = "itm_06ABC:release"
MESSAGE_ID = "<itm_06ABC=3Arelease.signoff@example.com>"
CONTENT = {
    "to": ["customer@example.org"],
    "cc": ["account-manager@example.com"],
    "subject": "Your refund for order 1234",
    "body": "Hello,\n\nyour refund is on its way.\n\nSupport\n",
}


def email_request(
    *,
    attempt: int = 1,
    content: dict[str, Any] | None = None,
    final_content: dict[str, Any] | None = None,
    kind: str = "email",
    reply_to: str | None = None,
) -> DeliveryRequest:
    item = {
        "id": "itm_06ABC",
        "kind": kind,
        "title": "Refund for order 1234",
        "content": content or CONTENT,
        "final_content": final_content,
        "decisions": [
            {"action": "approve", "surface": "slack", "actor_id": "U0ANN", "actor_name": "ann"}
        ],
        "decided_at": "2026-01-05T10:42:00Z",
    }
    target = {"type": "email", "from": "Support <help@example.com>", "reply_to": reply_to}
    return DeliveryRequest(
        url="",
        body=b"",
        idempotency_key=KEY,
        signing_secret="",
        event="release",
        attempt=attempt,
        item=item,
        target=target,
    )


# --- the server ----------------------------------------------------------------------


@dataclass
class Received:
    """One DATA the server answered, as it arrived."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    ehlo: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Mailbox:
    """An aiosmtpd handler: a store with one copy per Message-ID, plus a log of DATA."""

    received: list[Received] = field(default_factory=list)
    stored: dict[str, EmailMessage] = field(default_factory=dict)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> reply
    data_reply: str | None = None  # e.g. a 451 instead of accepting
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    users: dict[bytes, bytes] = field(default_factory=dict)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        assert server.transport is not None
        got = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            raw=envelope.content,
            ehlo=session.host_name,
            tls=server.transport.get_extra_info("ssl_object") is not None,
        )
        self.received.append(got)
        if self.data_reply:
            return self.data_reply
        self.stored.setdefault(str(got.message["Message-ID"]), got.message)
        return "250 OK: queued"

    def authenticate(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        ok = self.users.get(auth_data.login) == auth_data.password
        return AuthResult(success=ok, handled=False)


Serve = Callable[..., tuple[int, Mailbox]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start an SMTP server on 127.0.0.1; keyword arguments go to aiosmtpd."""
    controllers: list[Controller] = []

    def start(**options: Any) -> tuple[int, Mailbox]:
        mailbox = Mailbox()
        if options.pop("auth", False):
            mailbox.users = {b"alice@example.com": b"p@ss/w:rd%"}
            options["authenticator"] = mailbox.authenticate
        port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return port, mailbox

    yield start
    for controller in controllers:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Certificate(cert=cert, key=key)


def text(part: MIMEPart) -> str:
    """A text part's content with the wire's CRLF line ends turned back into LF."""
    return str(part.get_content()).replace("\r\n", "\n")


def target(url: str, **options: Any) -> EmailTarget:
    return EmailTarget(smtp_url=url, hostname="signoff.test", **options)


# --- delivering ----------------------------------------------------------------------


async def test_delivers_one_message_with_the_edited_content(serve: Serve) -> None:
    port, mailbox = serve()
    edited = {**CONTENT, "body": "Hello,\n\nyour refund of 40 EUR is on its way.\n"}
    request = email_request(final_content=edited, reply_to="billing@example.com")

    receipt = await target(f"smtp://127.0.0.1:{port}").deliver(request=request)

    assert receipt == f"SMTP 250 {MESSAGE_ID}"
    assert len(mailbox.received) == 1 and list(mailbox.stored) == [MESSAGE_ID]
    got = mailbox.received[0]
    assert got.mail_from == "help@example.com"
    assert got.rcpt_tos == ["customer@example.org", "account-manager@example.com"]
    assert got.ehlo == "signoff.test" and not got.tls
    message = mailbox.stored[MESSAGE_ID]
    assert message["From"] == "Support <help@example.com>"
    assert message["To"] == "customer@example.org"
    assert message["Cc"] == "account-manager@example.com"
    assert message["Reply-To"] == "billing@example.com"
    assert message["Subject"] == "Your refund for order 1234"
    assert message["Date"] == "Mon, 05 Jan 2026 10:42:00 +0000"
    assert message["X-Signoff-Item"] == "itm_06ABC"
    assert message.get_content_type() == "text/plain"
    assert text(message) == edited["body"]


async def test_html_makes_a_multipart_alternative(serve: Serve) -> None:
    port, mailbox = serve()
    html = "<p>Hello,</p><p>your refund is <b>on its way</b>.</p>"
    request = email_request(content={**CONTENT, "html": html, "cc": []})

    await target(f"smtp://127.0.0.1:{port}").deliver(request=request)

    message = mailbox.stored[MESSAGE_ID]
    assert message["Cc"] is None and message["Reply-To"] is None
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert text(plain) == CONTENT["body"]
    assert rich.get_content_type() == "text/html"
    assert text(rich).strip() == html


async def test_non_ascii_subject_and_body(serve: Serve) -> None:
    port, mailbox = serve()
    content = {**CONTENT, "subject": "Rückerstattung für Bestellung 1234", "body": "Grüße ✓\n"}

    await target(f"smtp://127.0.0.1:{port}").deliver(request=email_request(content=content))

    message = mailbox.stored[MESSAGE_ID]
    assert message["Subject"] == content["subject"]
    assert text(message) == content["body"]


def test_a_newline_in_the_subject_cannot_add_a_header() -> None:
    content = {**CONTENT, "subject": "Refund\r\nBcc: attacker@example.net"}
    message, _, recipients = build_message(email_request(content=content))
    assert message["Subject"] == "Refund Bcc: attacker@example.net"
    assert message["Bcc"] is None and "attacker@example.net" not in recipients


# --- exactly once: the crash between sending and recording ---------------------------

# A worker in its own process: delivers attempt 1, then dies before it can record it.
_WORKER = """
import asyncio, json, os, sys
from adapters.targets.email import EmailTarget
from bot.ports import DeliveryRequest

args = json.load(sys.stdin)
request = DeliveryRequest(**args["request"])
asyncio.run(EmailTarget(smtp_url=args["url"], hostname="signoff.test").deliver(request=request))
os._exit(137)  # killed after the server's 250, before the release is recorded
"""


async def test_a_retry_after_a_crash_sends_the_same_message_again(serve: Serve) -> None:
    port, mailbox = serve()
    url = f"smtp://127.0.0.1:{port}"
    content = {**CONTENT, "html": "<p>Hello,</p><p>your refund is on its way.</p>"}
    first = email_request(attempt=1, content=content)
    payload = {
        "url": url,
        "request": {
            "url": "",
            "body": "",
            "idempotency_key": first.idempotency_key,
            "signing_secret": "",
            "event": first.event,
            "attempt": 1,
            "item": dict(first.item),
            "target": dict(first.target),
        },
    }
    worker = subprocess.run(  # noqa: ASYNC221 - the server runs in its own thread
        [sys.executable, "-c", _WORKER],
        input=json.dumps(payload),
        env=signoff_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 137, worker.stderr
    assert len(mailbox.received) == 1  # the server has it; the worker never said so

    # The release is still pending, so another worker retries it.
    receipt = await target(url).deliver(request=email_request(attempt=2, content=content))

    assert receipt == f"SMTP 250 {MESSAGE_ID}"
    one, two = mailbox.received
    assert one.message["Message-ID"] == two.message["Message-ID"] == MESSAGE_ID
    assert one.message.items() == two.message.items()  # every header, Date included
    assert one.raw == two.raw  # byte for byte, the MIME boundary included
    assert list(mailbox.stored) == [MESSAGE_ID]  # and the mailbox keeps one copy


def test_the_message_id_is_derived_from_the_idempotency_key() -> None:
    assert message_id(idempotency_key=KEY, domain="example.com") == MESSAGE_ID
    # Different keys never share an id, even when they differ only in escaped characters.
    assert message_id(idempotency_key="a=3Ab", domain="x.y") == "<a=3D3Ab.signoff@x.y>"
    assert message_id(idempotency_key="a b/é", domain="x.y") == "<a=20b=2F=C3=A9.signoff@x.y>"


# --- TLS and AUTH --------------------------------------------------------------------

ALICE = "alice%40example.com:p%40ss%2Fw%3Ard%25"  # alice@example.com / p@ss/w:rd%


async def test_starttls_and_login_with_the_credentials_from_the_url(
    serve: Serve, certificate: Certificate
) -> None:
    port, mailbox = serve(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth=True,
        auth_require_tls=True,
        auth_required=True,
    )
    # Credentials and no starttls option: STARTTLS is required (default port would be 587).
    email = target(f"smtp://{ALICE}@127.0.0.1:{port}", tls_context=certificate.client_context())
    assert email.config.start_tls is True

    await email.deliver(request=email_request())

    assert mailbox.logins == [(b"alice@example.com", b"p@ss/w:rd%")]
    assert mailbox.received[0].tls and list(mailbox.stored) == [MESSAGE_ID]


async def test_implicit_tls(serve: Serve, certificate: Certificate) -> None:
    port, mailbox = serve(
        ssl_context=certificate.server_context(),
        auth=True,
        auth_require_tls=False,  # aiosmtpd counts only STARTTLS as TLS; this is TLS throughout
    )
    email = target(f"smtps://{ALICE}@127.0.0.1:{port}", tls_context=certificate.client_context())

    await email.deliver(request=email_request())

    assert mailbox.logins == [(b"alice@example.com", b"p@ss/w:rd%")]
    assert mailbox.received[0].tls and list(mailbox.stored) == [MESSAGE_ID]


async def test_a_wrong_password_fails_at_once_with_the_servers_reply(
    serve: Serve, certificate: Certificate
) -> None:
    port, mailbox = serve(
        ssl_context=certificate.server_context(), auth=True, auth_require_tls=False
    )
    email = target(
        f"smtps://alice%40example.com:guessed@127.0.0.1:{port}",
        tls_context=certificate.client_context(),
    )

    with pytest.raises(ReleaseError) as caught:
        await email.deliver(request=email_request())

    assert not caught.value.retryable
    assert "535" in caught.value.message
    assert "Authentication credentials invalid" in caught.value.message
    assert "guessed" not in caught.value.message
    assert mailbox.received == []


async def test_an_untrusted_certificate_is_refused(serve: Serve, certificate: Certificate) -> None:
    # Without a tls_context the system CA store is used, which does not know our test CA.
    port, mailbox = serve(ssl_context=certificate.server_context())

    with pytest.raises(ReleaseError) as caught:
        await target(f"smtps://127.0.0.1:{port}").deliver(request=email_request())

    assert caught.value.retryable  # like any connection failure; the retry limit applies
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
    assert mailbox.received == []


async def test_credentials_are_never_sent_in_the_clear(serve: Serve) -> None:
    # A server that would take a password without TLS (and offers no STARTTLS).
    port, mailbox = serve(auth=True, auth_require_tls=False)

    with pytest.raises(ReleaseError) as caught:
        await target(f"smtp://{ALICE}@127.0.0.1:{port}").deliver(request=email_request())

    assert not caught.value.retryable
    assert "STARTTLS" in caught.value.message
    assert mailbox.logins == [] and mailbox.received == []


# --- failures ------------------------------------------------------------------------


async def test_a_server_that_is_down_is_retried() -> None:
    closed = free_port()
    with pytest.raises(ReleaseError) as caught:
        await target(f"smtp://127.0.0.1:{closed}").deliver(request=email_request())
    assert caught.value.retryable


async def test_a_refused_recipient_fails_at_once_with_the_reply(serve: Serve) -> None:
    port, mailbox = serve()
    mailbox.refuse["customer@example.org"] = "550 5.1.1 <customer@example.org>: no such user"

    with pytest.raises(ReleaseError) as caught:
        await target(f"smtp://127.0.0.1:{port}").deliver(
            request=email_request(content={**CONTENT, "cc": []})
        )

    assert not caught.value.retryable
    assert "550 5.1.1 <customer@example.org>: no such user" in caught.value.message
    assert mailbox.received == []


async def test_a_partly_refused_message_says_who_got_it(serve: Serve) -> None:
    port, mailbox = serve()
    mailbox.refuse["account-manager@example.com"] = "550 5.1.1 mailbox unavailable"

    with pytest.raises(ReleaseError) as caught:
        await target(f"smtp://127.0.0.1:{port}").deliver(request=email_request())

    assert not caught.value.retryable
    assert "to 1 of 2 recipients" in caught.value.message
    assert "account-manager@example.com: 550 5.1.1 mailbox unavailable" in caught.value.message
    assert mailbox.received[0].rcpt_tos == ["customer@example.org"]


async def test_a_temporary_refusal_is_retried_and_the_retry_delivers(serve: Serve) -> None:
    port, mailbox = serve()
    mailbox.data_reply = "451 4.3.0 queue full, try again later"
    email = target(f"smtp://127.0.0.1:{port}")

    with pytest.raises(ReleaseError) as caught:
        await email.deliver(request=email_request(attempt=1))
    assert caught.value.retryable
    assert "451 4.3.0 queue full" in caught.value.message

    mailbox.data_reply = None
    await email.deliver(request=email_request(attempt=2))
    assert len(mailbox.received) == 2 and list(mailbox.stored) == [MESSAGE_ID]


async def test_only_email_items_are_sent() -> None:
    closed = free_port()  # never reached: the item is refused before connecting
    with pytest.raises(ReleaseError) as caught:
        await target(f"smtp://127.0.0.1:{closed}").deliver(request=email_request(kind="message"))
    assert not caught.value.retryable
    assert "'message'" in caught.value.message


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (aiosmtplib.SMTPResponseException(421, "service shutting down"), True),
        (aiosmtplib.SMTPDataError(554, "message rejected as spam"), False),
        (aiosmtplib.SMTPSenderRefused(553, "not your address", "a@b.c"), False),
        (aiosmtplib.SMTPAuthenticationError(454, "temporary auth failure"), True),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), False),
        (aiosmtplib.SMTPServerDisconnected("connection lost"), True),
        (aiosmtplib.SMTPConnectTimeoutError("timed out connecting"), True),
        (aiosmtplib.SMTPReadTimeoutError("timed out waiting"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), False),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b.c"),
                    aiosmtplib.SMTPRecipientRefused(452, "mailbox full", "d@e.f"),
                ]
            ),
            True,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b.c")]
            ),
            False,
        ),
    ],
)
def test_which_errors_are_retried(error: Exception, retryable: bool) -> None:
    assert classify(error).retryable is retryable


# --- SIGNOFF_SMTP_URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://user:pass@mail.example.com:587?starttls=true",
            SmtpConfig("mail.example.com", 587, "user", "pass", use_tls=False, start_tls=True),
        ),
        (
            "smtps://user:pass@mail.example.com:465",
            SmtpConfig("mail.example.com", 465, "user", "pass", use_tls=True, start_tls=False),
        ),
        (
            "smtps://user:pass@mail.example.com",
            SmtpConfig("mail.example.com", 465, "user", "pass", use_tls=True, start_tls=False),
        ),
        ("smtp://relay.internal:25", SmtpConfig("relay.internal", 25)),
        ("smtp://relay.internal", SmtpConfig("relay.internal", 25)),
        ("smtp://relay.internal?starttls=true", SmtpConfig("relay.internal", 587, start_tls=True)),
        ("smtp://u:p@relay.internal", SmtpConfig("relay.internal", 587, "u", "p", start_tls=True)),
        (
            "smtp://u:p@relay.internal:25?starttls=false",
            SmtpConfig("relay.internal", 25, "u", "p", start_tls=False),
        ),
        (
            "smtp://relay.internal:2465?tls=true&timeout=7.5",
            SmtpConfig("relay.internal", 2465, use_tls=True, start_tls=False, timeout=7.5),
        ),
        (
            "SMTP://Relay.Internal:25?StartTLS=False",
            SmtpConfig("relay.internal", 25, None, None, start_tls=False),
        ),
        ("smtp://[::1]:25", SmtpConfig("::1", 25)),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


def test_user_and_password_are_percent_decoded() -> None:
    config = parse_smtp_url(f"smtp://{ALICE}@mail.example.com:587")
    assert (config.username, config.password) == ("alice@example.com", "p@ss/w:rd%")
    assert "p@ss" not in repr(config)


def test_the_url_timeout_wins() -> None:
    assert EmailTarget(smtp_url="smtp://h?timeout=2", timeout=9)._timeout == 2
    assert EmailTarget(smtp_url="smtp://h", timeout=9)._timeout == 9


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://u:s3cret@mail.example.com:25", "scheme"),
        ("mail.example.com:25", "scheme"),
        ("", "scheme"),
        ("smtp://u:s3cret@:25", "no host"),
        ("smtp://u:s3cret@mail.example.com:notaport", "port"),
        ("smtp://u:s3cret@mail.example.com:70000", "port"),
        ("smtp://u:s3cret@mail.example.com:0", "port"),
        ("smtp://u:s3cret/x@mail.example.com:25", "port"),  # an unescaped / in the password
        ("smtp://u:s3cret@[::1:25", "host"),
        ("smtp://u:s3cret@mail.example.com/inbox", "path"),
        ("smtp://u:s3cret@mail.example.com?startls=true", "unknown option 'startls'"),
        ("smtp://u:s3cret@mail.example.com?starttls=maybe", "starttls"),
        ("smtps://u:s3cret@mail.example.com?tls=false", "tls=false"),
        ("smtps://u:s3cret@mail.example.com?starttls=true", "exclude"),
        ("smtp://u:s3cret@mail.example.com?timeout=-1", "timeout"),
        ("smtp://u:s3cret@mail.example.com?timeout=soon", "timeout"),
        ("smtp://s3cret@mail.example.com", "without a password"),
        ("smtp://:s3cret@mail.example.com", "without a user name"),
    ],
)
def test_a_bad_url_names_the_setting_but_not_the_password(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_smtp_url(url)
    assert caught.value.message.startswith("SIGNOFF_SMTP_URL: ")
    assert complaint in caught.value.message
    assert "s3cret" not in caught.value.message
    with pytest.raises(ConfigError):
        EmailTarget(smtp_url=url)
