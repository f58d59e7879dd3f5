"""Where a sandboxed job may connect: the one policy behind the worker's egress proxy (builds,
Git fetches) and behind the checks of Git URLs at submission.

A destination is a host on an allow-list (an exact name, or `.example.org` for its
subdomains), on an allowed port, whose every resolved address is public. The proxy connects
to one of the addresses `resolve_destination` checked and returned, never to the name again,
so a DNS answer that changes between the check and the connect (rebinding) cannot switch the
target. Host names are compared in one canonical form (lower case, IDNA, no trailing dot); IP
addresses only as written in the standard notation, so `2130706433`, `0177.0.0.1` or `0x7f.1`
(which C resolvers read as 127.0.0.1) are refused rather than guessed at.

No Django imports: the proxy runs this in the worker without settings.
"""

import ipaddress
import re
import socket
from collections.abc import Iterable

from config.sandbox.spec import Egress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Closed even when private egress is allowed: nothing a job needs listens there, and the cloud
# metadata endpoints hand out the machine's own credentials.
_ALWAYS_CLOSED = (
    (_networks("169.254.169.254/32", "169.254.170.2/32", "100.100.100.200/32",
               "fd00:ec2::254/128"), "cloud metadata"),
    (_networks("0.0.0.0/8", "::/128"), "unspecified"),
    (_networks("224.0.0.0/4", "255.255.255.255/32", "ff00::/8"), "multicast or broadcast"),
)
# Closed unless private egress is allowed. Listed explicitly (not only through `is_private`
# and friends) so the policy does not shift with the Python version.
_PRIVATE = (
    (_networks("127.0.0.0/8", "::1/128"), "loopback"),
    (_networks("169.254.0.0/16", "fe80::/10"), "link-local"),
    (_networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"), "private"),
    (_networks("fec0::/10"), "site-local"),
    (_networks("100.64.0.0/10"), "carrier-grade NAT"),
    (_networks("192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
               "203.0.113.0/24", "240.0.0.0/4", "2001:db8::/32", "100::/64"), "reserved"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(Exception):
    """A job may not connect there; `message` names the host and the reason."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_ip(host: str) -> IPAddress | None:
    """The address a canonical host (see `canonical_host`) is, or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def canonical_host(host: str) -> str:
    """`host` as the policy compares it: an IP address in its standard notation (IPv6 without
    brackets, compressed), or a lower-case ASCII (IDNA) name without a trailing dot. Raises
    ValueError, naming the reason, for anything else."""
    if host.startswith("[") and host.endswith("]"):
        address = parse_ip(host[1:-1])
        if not isinstance(address, ipaddress.IPv6Address) or address.scope_id:
            raise ValueError("brackets hold an IPv6 address without a zone, nothing else")
        return str(address)
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():  # IDNA maps fullwidth digits to an address: checked below
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("not a valid internationalized host name") from None
    name = name.lower()
    if (address := parse_ip(name)) is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            raise ValueError("an IPv6 zone (%) is not accepted")
        return str(address)
    return _checked_name(name)


def _checked_name(name: str) -> str:
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not a valid host name")
    # A name whose last label is a number is an IPv4 address in another notation to the C
    # resolver (2130706433, 0177.0.0.1, 127.1); no real top-level domain is numeric.
    if _NUMERIC_LABEL.match(labels[-1]):
        raise ValueError("a number, not a host name; write IPv4 addresses as four decimal parts")
    return name


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether `host` is on the allow-list: equal to an entry (canonical forms compared), or a
    subdomain of a `.suffix` entry (".example.org" allows "a.example.org", not "example.org").
    An IP address is allowed only by an entry naming that address."""
    try:
        name = canonical_host(host)
    except ValueError:
        return False
    is_ip = parse_ip(name) is not None
    for entry in allowed:
        wildcard = entry.startswith(".")
        if wildcard and is_ip:
            continue
        try:
            wanted = canonical_host(entry[1:] if wildcard else entry)
        except ValueError:
            continue  # an unusable entry allows nothing
        if (name.endswith("." + wanted) if wildcard else name == wanted):
            return True
    return False


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 destination an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_refusal(address: IPAddress, *, allow_private: bool = False) -> str:
    """Why a job may not connect to `address` ("loopback", "cloud metadata", ...), or "" when
    it may. With `allow_private`, only metadata, unspecified and multicast stay closed."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address_refusal(embedded, allow_private=allow_private)  # the same socket
        if reason := address_refusal(embedded, allow_private=allow_private):
            return reason
        if address in _NAT64:
            return ""  # DNS64 on an IPv6-only network: judged by the IPv4 address it carries
    groups = _ALWAYS_CLOSED if allow_private else _ALWAYS_CLOSED + _PRIVATE
    for networks, reason in groups:
        if any(address in network for network in networks):
            return reason
    if allow_private:
        return ""
    if address.is_loopback or address.is_link_local or address.is_private:
        return "private"
    if address.is_reserved or address.is_unspecified or address.is_multicast \
            or not address.is_global:
        return "reserved"
    return ""


def _resolve(name: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise EgressRefused(f"{name} cannot be resolved ({exc}).") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise EgressRefused(f"{name} resolves to no address.")
    return addresses


def resolve_destination(host: str, port: int, egress: Egress) -> list[str]:
    """The addresses a job may reach `host`:`port` at, all of them checked; raises
    EgressRefused when the host or port is not allowed or ANY address is closed (one closed
    address refuses the lot: a resolver could be made to answer it first)."""
    try:
        name = canonical_host(host)
    except ValueError as exc:
        raise EgressRefused(f"{host!r} is refused as a destination: {exc}.") from None
    if not host_allowed(name, egress.hosts):
        raise EgressRefused(f"{name} is not on this job's list of allowed hosts.")
    if port not in egress.ports:
        allowed = ", ".join(str(p) for p in egress.ports) or "none"
        raise EgressRefused(f"Port {port} of {name} is not allowed (allowed ports: {allowed}).")
    addresses = [name] if parse_ip(name) is not None else _resolve(name, port)
    opened = _networks(*egress.networks)
    for address in addresses:
        ip = ipaddress.ip_address(address)
        listed = any(ip.version == network.version and ip in network for network in opened)
        reason = address_refusal(ip, allow_private=egress.allow_private or listed)
        if reason:
            shown = name if address == name else f"{name} (resolved to {address})"
            raise EgressRefused(f"{shown} is refused: a {reason} address, which jobs may not "
                                "reach.")
    return addresses


def mirror_networks(hosts: Iterable[str]) -> list[str]:
    """The addresses (as /32 or /128 networks) that `hosts` resolve to here and that are not
    public, but neither loopback, link-local nor always closed: a package index mirror on the
    machine's own network, which a development setup may choose to trust."""
    found = []
    for host in hosts:
        try:
            addresses = _resolve(canonical_host(host), 443)
        except (EgressRefused, ValueError):
            continue
        for text in addresses:
            ip = ipaddress.ip_address(text)
            if ip.is_loopback or ip.is_link_local or address_refusal(ip, allow_private=True) \
                    or not address_refusal(ip):
                continue
            found.append(f"{ip}/{ip.max_prefixlen}")
    return list(dict.fromkeys(found))
