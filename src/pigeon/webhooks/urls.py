"""Which webhook URLs Pigeon will call.

Only http and https, with a host. Addresses that are loopback, private, link-local, reserved
or otherwise not on the public internet are refused (a webhook must not become a way into the
operator's own network) unless the operator allows them (``webhooks_allow_private``). The rule
is applied when a URL is set and again, on the resolved addresses, before every POST.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from pigeon.errors import Invalid


class RefusedUrl(Invalid):
    """A URL Pigeon will not call, with the reason."""


class PrivateAddress(RefusedUrl):
    """A URL whose host is on a loopback or private network."""


def shown(url: str) -> str:
    """A URL as a log may show it: its scheme, host and port, and "/…" for a path. The rest may
    hold a receiver's credentials: in the user part, the query (the "URL-level authentication"
    Zoho describes) or the path itself (as Slack's and Discord's webhook URLs do)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a port: leave it out
        port = ""
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}{port}{'/…' if parts.path.strip('/') else ''}"


def receiver(url: str) -> str:
    """``scheme://host:port`` of a URL already checked: the unit one slow server can hold up."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def check_syntax(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; RefusedUrl when it is not one."""
    if len(url) > 2048:
        raise RefusedUrl("a webhook URL must be at most 2048 characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url.strip()):
        raise RefusedUrl("a webhook URL must not contain spaces or control characters (encode them)")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl("a webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise RefusedUrl("a webhook URL must name a host")
    if len(parts.hostname) > 253:
        raise RefusedUrl("a host name is at most 253 characters")
    if parts.username or parts.password:
        raise RefusedUrl("a webhook URL must not carry credentials; use the shared secret")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
SITE_LOCAL = ipaddress.ip_network("fec0::/10")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def is_public(address: str) -> bool:
    """Whether an address is on the public internet; an IPv6 address that carries an IPv4 one
    (mapped, compatible, 6to4, NAT64) is judged by the IPv4 address inside."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in SITE_LOCAL:
            return False
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and (ip in IPV4_COMPATIBLE or ip in IPV4_TRANSLATED or any(ip in net for net in NAT64)):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            ip = inner
    return ip.is_global and not ip.is_multicast


def check_addresses(host: str, addresses: list[str]) -> None:
    """RefusedUrl unless every address ``host`` resolves to is public."""
    if not addresses:
        raise RefusedUrl(f"{host} does not resolve")
    for address in addresses:
        if not is_public(address):
            raise PrivateAddress(
                f"{host} is {address}, a loopback or private address; the operator must set "
                "PIGEON_WEBHOOKS_ALLOW_PRIVATE=true to allow it"
            )


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedUrl(f"{host} does not resolve: {exc}") from None
    return [str(info[4][0]) for info in infos]


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, stripped, if Pigeon may call it; else RefusedUrl saying why."""
    url = url.strip()
    host, port = check_syntax(url)
    if not allow_private:
        check_addresses(host, resolve(host, port))
    return url
