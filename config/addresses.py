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
