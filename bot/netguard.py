"""Which addresses signoff may POST to: the SSRF guard of callbacks and webhook releases.

A route's ``callback_hosts`` limits callback URLs by host name; this module adds the
address check. A URL whose host is, or resolves to, a loopback, link-local, private,
unspecified, multicast or otherwise reserved address is refused unless the operator
allowed it explicitly (route key ``allow_private_callbacks: true`` or the setting
``SIGNOFF_ALLOW_PRIVATE_CALLBACKS``). Literal addresses are refused at submit and at
start; host names are checked on the addresses they resolve to at send time, and the
request goes to the address that was checked, so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot slip a private address in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Literal
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressClass = Literal["unspecified", "loopback", "link-local", "multicast", "private", "reserved"]

ALLOW_HINT = "allow_private_callbacks: true on the route or SIGNOFF_ALLOW_PRIVATE_CALLBACKS=1"

_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_V4 = frozenset("0123456789abcdefx.")


class UnsafeAddress(Exception):
    """A URL's host is or resolves to an address signoff must not call."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _embedded_v4(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address (which
    reach that IPv4 address), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_class(address: IPAddress) -> AddressClass | None:
    """Why ``address`` must not be called without an explicit allowance, or None for a
    public (globally routable unicast) address."""
    inner = _embedded_v4(address)
    if inner.is_unspecified:
        return "unspecified"
    if inner.is_loopback:
        return "loopback"
    if inner.is_link_local:
        return "link-local"
    if inner.is_multicast:
        return "multicast"
    if any(inner in net for net in _PRIVATE_NETS if net.version == inner.version):
        return "private"
    if inner.is_reserved or inner.is_private or not inner.is_global:
        return "reserved"  # e.g. 100.64/10, 198.18/15, documentation ranges, 240/4
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one, in every spelling a resolver accepts
    (``127.0.0.1``, ``::1``, and the legacy ``127.1``, ``2130706433``, ``0x7f.1``)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        pass
    if host and set(host.lower()) <= _LEGACY_V4 and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def refusal(*, host: str, address: IPAddress, kind: AddressClass) -> str:
    """The message for a refused address: host, address and class, and how to allow it."""
    shown = host if host == str(address) else f"{host} ({address})"
    return f"{shown} is a {kind} address; set {ALLOW_HINT} to allow it"


def check_literal_url(url: str) -> str | None:
    """A refusal message when ``url``'s host is a literal non-public address, else None.
    Host names pass here; :func:`resolve_checked` checks them at send time."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None  # not a URL: the host allow-list refuses it
    if not host:
        return None
    address = literal_address(host)
    if address is None:
        return None
    kind = address_class(address)
    return None if kind is None else refusal(host=host, address=address, kind=kind)


async def resolve_checked(host: str, port: int) -> IPAddress:
    """Resolve ``host`` and return the address to connect to. Raises UnsafeAddress when
    any address it resolves to is not public (an answer mixing public and private
    addresses is refused whole), and ``OSError`` when it does not resolve."""
    literal = literal_address(host)
    if literal is not None:
        found = [literal]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not found:
            raise OSError(f"{host} resolves to no address")
    for address in found:
        kind = address_class(address)
        if kind is not None:
            raise UnsafeAddress(refusal(host=host, address=address, kind=kind))
    return found[0]
