"""Where ``listen`` and ``metrics_listen`` bind, as the kernel will see them.

Both are resolved the way the bind resolves them (``getaddrinfo``), so two spellings of one
address (``127.0.0.1`` and ``localhost``) are one address, and a host that does not resolve is a
problem at its key path instead of a traceback when ``serve`` binds. A literal address is never
looked up; a name is (the hosts file or DNS) when the config is read, on a reload too.
"""

from __future__ import annotations

import ipaddress
import socket

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def bound_addresses(listen: str) -> frozenset[Address] | str:
    """The addresses a bind of ``host:port`` takes, or the problem why it cannot."""
    host, _, port = listen.rpartition(":")
    try:
        found = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # socket.gaierror: not in the hosts file nor in DNS
        return f"cannot resolve host {host!r}: {getattr(exc, 'strerror', None) or exc}"
    return frozenset(plain(str(sockaddr[0])) for *_, sockaddr in found)


def plain(text: str) -> Address:
    """``::ffff:127.0.0.1`` is 127.0.0.1; a zone (``fe80::1%eth0``) names no other address."""
    address = ipaddress.ip_address(text.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def shared_port(one: str, one_at: frozenset[Address], other: str, other_at: frozenset[Address]) -> bool:
    """Whether both cannot be bound at once: the same port on a common address, or on a wildcard
    address (0.0.0.0, ::) that takes every address of the machine."""
    if one.rpartition(":")[2] != other.rpartition(":")[2]:
        return False
    return bool(one_at & other_at) or any(address.is_unspecified for address in one_at | other_at)
