"""The e-mail target: send an approved ``email`` item over SMTP (``SIGNOFF_SMTP_URL``).

SMTP cannot tell a client whether it already accepted a message, so a worker that dies
between the server's ``250`` and recording the release sends the message again on its
retry. What this target guarantees instead is *at-least-once delivery of one
recognisable message*: every attempt of a delivery sends byte-identical headers, with a
``Message-ID`` derived from the delivery's idempotency key (the same in every attempt and
every process), a ``Date`` taken from when the item was decided, and ``X-Signoff-Item``;
receivers and mailbox stores that deduplicate on ``Message-ID`` keep one copy.

Connection errors, timeouts and ``4xx`` replies are retried; ``5xx`` replies (a refused
recipient, a rejected message, bad credentials) fail at once with the server's text.
Credentials are never sent without TLS unless the URL says ``starttls=false``.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from bot.errors import ConfigError, ReleaseError
from bot.ports import DeliveryRequest

SETTING = "SIGNOFF_SMTP_URL"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_OPTIONS = frozenset({"starttls", "tls", "timeout"})
# Characters kept as they are in the left part of a Message-ID; others become =XX.
_ID_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to connect. ``start_tls`` is True (required), False (never) or None
    (upgrade when the server offers it); ``use_tls`` is implicit TLS from the start."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False
    start_tls: bool | None = None
    timeout: float | None = None


def _bad(what: str) -> ConfigError:
    return ConfigError(f"{SETTING}: {what}")


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(f"option {name}={value!r} must be true or false")


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse ``smtp://[user:pass@]host[:port][?starttls=true|false&tls=true&timeout=S]``
    or ``smtps://...`` (implicit TLS). User and password are percent-decoded.

    Default port: 465 with implicit TLS, 587 with STARTTLS required, else 25. With
    credentials and no ``starttls`` option, STARTTLS is required. Raises ``ConfigError``
    naming the setting; the message never contains the password.
    """
    try:
        parts = urlsplit(url.strip())
        raw_port = parts.port
    except ValueError:
        # Bracket or port errors; the URL itself is not echoed (it may hold a password).
        raise _bad("the host or port is malformed (port must be 1-65535)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        shown = scheme or "none"
        raise _bad(f"scheme must be smtp:// or smtps://, not {shown!r}")
    if not parts.hostname:
        raise _bad("the URL names no host (expected smtp://host:port)")
    if raw_port == 0:
        raise _bad("port must be 1-65535")
    if parts.path not in ("", "/"):
        raise _bad("the URL must not have a path")

    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        name = key.lower()
        if name not in _OPTIONS:
            known = ", ".join(sorted(_OPTIONS))
            raise _bad(f"unknown option {key!r} (known: {known})")
        options[name] = value

    use_tls = scheme == "smtps"
    if "tls" in options:
        tls = _flag("tls", options["tls"])
        if use_tls and not tls:
            raise _bad("smtps:// is implicit TLS; tls=false contradicts it")
        use_tls = tls
    start_tls = _flag("starttls", options["starttls"]) if "starttls" in options else None
    if use_tls and start_tls:
        raise _bad("implicit TLS (smtps:// or tls=true) and starttls=true exclude each other")

    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise _bad("a password is given without a user name")
    if username is not None and password is None:
        raise _bad("a user name is given without a password (smtp://user:pass@host)")
    if use_tls:
        start_tls = False
    elif username is not None and start_tls is None:
        start_tls = True  # never send a password in the clear unless asked to

    timeout: float | None = None
    if "timeout" in options:
        try:
            timeout = float(options["timeout"])
        except ValueError:
            timeout = -1.0
        if not 0 < timeout < float("inf"):
            raise _bad(f"option timeout={options['timeout']!r} must be a positive number")

    port = raw_port or (465 if use_tls else 587 if start_tls else 25)
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=username,
        password=password,
        use_tls=use_tls,
        start_tls=start_tls,
        timeout=timeout,
    )


def message_id(*, idempotency_key: str, domain: str) -> str:
    """``<key.signoff@domain>`` with every character of the key outside ``[A-Za-z0-9_-]``
    written as ``=XX`` (so different keys never share an id)."""
    left = "".join(
        c if c in _ID_SAFE else "".join(f"={b:02X}" for b in c.encode()) for c in idempotency_key
    )
    return f"<{left}.signoff@{domain}>"


def classify(exc: BaseException) -> ReleaseError:
    """The ``ReleaseError`` for an error from sending: 4xx replies, lost connections and
    timeouts may pass (retryable); 5xx replies and unsupported features will not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        retryable = any(r.code < 500 for r in exc.recipients)
        return ReleaseError(f"SMTP: all recipients refused: {refused}", retryable=retryable)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = {
            aiosmtplib.SMTPAuthenticationError: "login refused",
            aiosmtplib.SMTPSenderRefused: "sender refused",
            aiosmtplib.SMTPDataError: "message refused",
            aiosmtplib.SMTPHeloError: "EHLO refused",
        }.get(type(exc), "error")
        return ReleaseError(f"SMTP {what}: {exc.code} {exc.message}", retryable=exc.code < 500)
    if isinstance(exc, OSError):
        # SMTPConnectError, SMTPServerDisconnected, SMTPTimeoutError and TLS errors included.
        return ReleaseError(f"SMTP: {type(exc).__name__}: {exc}", retryable=True)
    # SMTPNotSupported, plain SMTPException (no STARTTLS or AUTH offered and the like) and
    # ValueError (an address aiosmtplib will not take): the same request fails the same way.
    return ReleaseError(f"SMTP: {exc}", retryable=False)


class EmailTarget:
    """Sends ``email`` items. ``hostname`` is the name given in EHLO (default: this
    machine's FQDN); ``tls_context`` replaces the system CA store (for tests or a private
    CA)."""

    def __init__(
        self,
        *,
        smtp_url: str,
        timeout: float = 30.0,
        hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = parse_smtp_url(smtp_url)
        self._timeout = self.config.timeout if self.config.timeout is not None else timeout
        self._hostname = hostname
        self._tls_context = tls_context

    async def deliver(self, *, request: DeliveryRequest) -> str:
        message, sender, recipients = build_message(request)
        config = self.config
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=sender,
                recipients=recipients,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.use_tls,
                start_tls=config.start_tls,
                timeout=self._timeout,
                local_hostname=self._hostname,
                tls_context=self._tls_context,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise classify(exc) from exc
        if refused:
            # Accepted for some recipients. A 4xx for the others: retry the whole message
            # (those who have it get the same Message-ID again). A 5xx: it will not pass.
            listed = "; ".join(f"{addr}: {r.code} {r.message}" for addr, r in refused.items())
            accepted = len(recipients) - len(refused)
            raise ReleaseError(
                f"SMTP: sent {message['Message-ID']} to {accepted} of {len(recipients)} "
                f"recipients; refused {listed}",
                retryable=any(r.code < 500 for r in refused.values()),
            )
        return f"SMTP 250 {message['Message-ID']}"


def build_message(request: DeliveryRequest) -> tuple[EmailMessage, str, list[str]]:
    """The message for ``request``, its envelope sender and its recipients.

    A pure function of the request minus ``attempt``: every attempt builds the same bytes.
    Raises a non-retryable ``ReleaseError`` for anything that is not a sendable e-mail.
    """
    item, target = request.item, request.target
    kind = item.get("kind")
    if kind != "email":
        raise ReleaseError(
            f"the email target sends only items of kind 'email', not {kind!r}", retryable=False
        )
    content: Mapping[str, Any] = item.get("final_content") or item.get("content") or {}
    to = _addresses(content, "to")
    cc = _addresses(content, "cc")
    subject, body, html = content.get("subject"), content.get("body"), content.get("html")
    if not to:
        raise ReleaseError("the e-mail has no 'to' address", retryable=False)
    if not isinstance(subject, str) or not isinstance(body, str):
        raise ReleaseError("the e-mail lacks a text 'subject' or 'body'", retryable=False)

    from_ = str(target.get("from") or "")
    sender = parseaddr(from_)[1]
    domain = sender.rpartition("@")[2]
    if "@" not in sender or not domain:
        raise ReleaseError(f"the target's 'from' is not an address: {from_!r}", retryable=False)
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ReleaseError(
            f"the target's 'from' domain is invalid: {domain!r}", retryable=False
        ) from None

    message = EmailMessage()
    try:
        message["From"] = from_
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        if target.get("reply_to"):
            message["Reply-To"] = str(target["reply_to"])
        message["Subject"] = " ".join(subject.splitlines())  # one line: no header injection
        message["Date"] = format_datetime(_decided_at(item))
        message["Message-ID"] = message_id(idempotency_key=request.idempotency_key, domain=domain)
        message["X-Signoff-Item"] = str(item.get("id", ""))
        message.set_content(body)
        if isinstance(html, str) and html:
            message.add_alternative(html, subtype="html")
            # A boundary derived from the parts (not random), so that retries are identical.
            digest = hashlib.sha256(f"{body}\0{html}".encode()).hexdigest()[:32]
            message.set_boundary(f"=_signoff_{digest}")
    except (ValueError, TypeError) as exc:  # a header the email package will not take
        raise ReleaseError(f"cannot build the e-mail: {exc}", retryable=False) from exc
    return message, sender, [*to, *cc]


def _addresses(content: Mapping[str, Any], key: str) -> list[str]:
    value = content.get(key) or []
    values: Sequence[Any] = [value] if isinstance(value, str) else value
    return [addr for _, addr in getaddresses([str(v) for v in values]) if addr]


def _decided_at(item: Mapping[str, Any]) -> datetime:
    """When the item was decided (the same on every attempt); now if unknown."""
    value = item.get("decided_at")
    at: datetime | None = None
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            at = None
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
