"""Client addresses: which ones are this machine."""

import ipaddress


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8 and ::1, also as an IPv4-mapped IPv6 address (a dual-stack listener's)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _networks(entries) -> list:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def _trusted(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in networks)


def client_address(request) -> str:
    """The address a request came from: REMOTE_ADDR, or, when that is one of
    LEDGERFLOW_TRUSTED_PROXIES (the TLS proxy in front), the nearest address in
    X-Forwarded-For that is not a trusted proxy. Lockouts, the audit trail and the demo
    accounts' loopback rule all judge this address; a header from anyone else is ignored."""
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR") or ""
    networks = _networks(settings.LEDGERFLOW_TRUSTED_PROXIES)
    if not networks or not _trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if not _trusted(hop, networks):
            return hop
    return remote
