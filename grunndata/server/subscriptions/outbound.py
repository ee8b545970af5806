"""Sending to a subscriber's rest-hook endpoint without becoming a way into the networks behind us.

A subscriber names the URL we POST to, so the URL is checked as an attacker's would be: `https`
only (plain `http` to the hosts a setting names, as tests need for 127.0.0.1), no credentials in
it, and every address its host resolves to must be a public one unless a setting allows private
ones. The check runs at every delivery, not only when the subscription is made (a name can be
pointed elsewhere later), and the request goes to the address that was checked (the name is sent
as Host and TLS SNI, so the certificate is still checked against it): a second lookup cannot
answer differently. Redirects are not followed, proxies from the environment are not used, a
connection is never reused for another delivery, and the answer's body is not read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import httpx

MAX_URL = 2048
# headers a subscriber may not set: we say who we send to and what, and the transport frames it
_OURS = frozenset(("host", "content-type", "content-length", "transfer-encoding", "connection", "te"))
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Where rest-hook notifications may go (the settings `subscription_http_hosts` and
    `subscription_private_addresses`)."""

    http_hosts: frozenset[str] = field(default_factory=frozenset)  # plain http allowed to these
    private: bool = False  # loopback, private, link-local and other non-public addresses allowed


class RefusedEndpoint(Exception):
    """The endpoint may not be sent to; the message is the sentence for the subscriber."""


@dataclass(frozen=True, slots=True)
class _Target:
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    path: str  # path and query, as sent
    literal: IPAddress | None  # the host, when it is an address


def _split(url: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise RefusedEndpoint("the endpoint must be an absolute https URL")
    if len(url) > MAX_URL:
        raise RefusedEndpoint(f"the endpoint is longer than {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url) or not url.isascii():
        raise RefusedEndpoint("the endpoint may not hold spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range or not a number raises here
    except ValueError:
        raise RefusedEndpoint("the endpoint is not a valid URL") from None
    return parts


def _target(url: str, policy: EndpointPolicy) -> _Target:
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("https", "http") or not parts.netloc or not host:
        raise RefusedEndpoint("the endpoint must be an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise RefusedEndpoint("the endpoint may not hold a user name or password; send them as a header")
    if parts.fragment:
        raise RefusedEndpoint("the endpoint may not hold a fragment (#...)")
    if scheme == "http" and host not in policy.http_hosts:
        raise RefusedEndpoint(
            "the endpoint must use https (plain http is allowed only to the hosts the server names)"
        )
    literal = _literal(host)
    if literal is None and not _HOST_NAME.fullmatch(host):
        raise RefusedEndpoint(
            "the endpoint's host is no host name: labels of 1 to 63 letters, digits or hyphens, "
            "joined by dots, at most 253 characters"
        )
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, port, path, literal)


# a DNS host name (RFC 1123; an internationalised name in its xn-- form): no empty label, none longer than 63
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*")
NON_PUBLIC = "the endpoint's host is a loopback, private, link-local or otherwise non-public address"
# IPv6 ranges that carry an IPv4 address a gateway or the host itself may reach (Python's
# is_global calls them global): the NAT64 well-known prefix is judged by the address it carries;
# the others (local-use NAT64, IPv4-compatible, SIIT, Teredo) are no receiver's address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NEVER = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96", "2001::/32"))
# a host whose last label is a number is an IPv4 address in one of inet_aton's forms ("127.1",
# "2130706433", "0x7f000001"), as browsers and resolvers read it: no registered name ends so
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")


def _refusal(address: IPAddress, policy: EndpointPolicy) -> str | None:
    """Why the address may not be sent to, or None."""
    if policy.private:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.sixtofour is not None:
            address = address.sixtofour
        elif any(address in net for net in _NEVER):
            return NON_PUBLIC
    if address.is_global and not address.is_multicast:
        return None
    return NON_PUBLIC


def _literal(host: str) -> IPAddress | None:
    """The address a host names, when it is one (in any form a resolver would read as one)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise RefusedEndpoint(f"the endpoint's host {host[:100]} is not a valid address") from None


def check_endpoint(url: str, policy: EndpointPolicy) -> None:
    """Refuse (RefusedEndpoint) an endpoint that can never be sent to, when a subscription is made.

    Names are not looked up here: that is done at every delivery, where it counts.
    """
    target = _target(url, policy)
    if target.literal is not None and (why := _refusal(target.literal, policy)):
        raise RefusedEndpoint(why)
    if not policy.private and (target.host == "localhost" or target.host.endswith(".localhost")):
        raise RefusedEndpoint(NON_PUBLIC)  # always loopback (RFC 6761)


async def _resolve(target: _Target, policy: EndpointPolicy, timeout: float) -> IPAddress:
    """The address to send to: every address the name has must be allowed (a name answering a
    public and a private address is refused), and the first is used."""
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError, UnicodeError):
            raise RefusedEndpoint(f"the endpoint's host {target.host} could not be resolved") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise RefusedEndpoint(f"the endpoint's host {target.host} could not be resolved")
    for address in addresses:
        if why := _refusal(address, policy):
            raise RefusedEndpoint(why)
    return addresses[0]


def client() -> httpx.AsyncClient:
    """The client deliveries are sent with: no environment proxies, no redirects, no connection
    kept for a later delivery (it was opened to an address checked for one name)."""
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: EndpointPolicy,
    timeout: float,
) -> int:
    """POST `body` (FHIR JSON) to the endpoint at the address checked now; the HTTP status.

    RefusedEndpoint when the endpoint may not be sent to; httpx.HTTPError when sending failed.
    """
    target = _target(url, policy)
    address = await _resolve(target, policy, timeout)
    shown = f"[{address}]" if address.version == 6 else str(address)
    default_port = 443 if target.scheme == "https" else 80
    named = f"[{target.host}]" if ":" in target.host else target.host
    sent = {
        name: value
        for name, value in headers.items()
        if name.lower() not in _OURS and "\r" not in value and "\n" not in value
    }
    sent["Host"] = named if target.port == default_port else f"{named}:{target.port}"
    sent["Content-Type"] = "application/fhir+json"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" and target.literal is None else {}
    request = client.build_request(
        "POST",
        f"{target.scheme}://{shown}:{target.port}{target.path}",
        content=body,
        headers=sent,
        extensions={**extensions, "timeout": httpx.Timeout(timeout).as_dict()},
    )
    try:
        response = await asyncio.wait_for(client.send(request, stream=True, follow_redirects=False), timeout)
    except TimeoutError:
        raise httpx.TimeoutException(f"no answer within {timeout:g} s", request=request) from None
    await response.aclose()  # the status is the answer; the body is not read
    return response.status_code
