"""The egress policy: which hosts, ports and resolved addresses a sandboxed job may reach."""

import ipaddress
import socket

import pytest

from config.sandbox.netpolicy import (
    EgressRefused,
    address_refusal,
    canonical_host,
    host_allowed,
    resolve_destination,
)
from config.sandbox.spec import Egress

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(("host", "allowed", "expected"), [
    ("github.com", ["github.com"], True),
    ("GitHub.COM.", ["github.com"], True),
    ("github.com", ["GITHUB.com."], True),
    ("a.example.org", [".example.org"], True),
    ("a.b.example.org", [".example.org"], True),
    ("example.org", [".example.org"], False),
    ("badexample.org", [".example.org"], False),
    ("example.org.evil.com", [".example.org"], False),
    ("github.com.evil.com", ["github.com"], False),
    ("bücher.example", ["xn--bcher-kva.example"], True),
    ("xn--bcher-kva.example", ["bücher.example"], True),
    ("\uff47\uff49\uff54\uff48\uff55\uff42.com", ["github.com"], True),  # fullwidth
    ("[::1]", ["::1"], True),
    ("0:0::1", ["[::1]"], True),
    ("127.0.0.1", [".0.0.1", ".1"], False),   # a suffix never matches an address
    ("127.0.0.1", ["127.0.0.1"], True),
    ("2130706433", ["2130706433"], False),    # numeric forms are never a name
    ("github.com", ["", ".", "*"], False),
    ("", ["github.com"], False),
    ("github.com:443", ["github.com"], False),
    ("git_hub.com", ["git_hub.com"], False),
])
def test_host_allowed_matches_exact_names_and_dot_suffixes(host, allowed, expected):
    assert host_allowed(host, allowed) is expected


@pytest.mark.parametrize(("host", "meant"), [
    ("127.0.0.1.", "127.0.0.1"), ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127.0.0.1"),  # fullwidth
    ("[0:0:0:0:0:0:0:1]", "::1"),
])
def test_other_spellings_of_an_address_are_read_as_that_address(host, meant):
    assert canonical_host(host) == meant


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "0x7f000001",
                                  "[127.0.0.1]", "[fe80::1%eth0]", "a b", "-x.com", "a..b",
                                  "host%2ecom", "x" * 64 + ".com"])
def test_ambiguous_or_invalid_hosts_are_refused(host):
    with pytest.raises(ValueError):
        canonical_host(host)
    with pytest.raises(EgressRefused, match="refused as a destination"):
        resolve_destination(host, 443, Egress(hosts=(host,)))


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"), ("fec0::1", "site-local"),
    ("100.64.0.1", "carrier-grade NAT"), ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"),
    ("::", "unspecified"), ("224.0.0.1", "multicast or broadcast"),
    ("ff02::1", "multicast or broadcast"), ("255.255.255.255", "multicast or broadcast"),
    ("240.0.0.1", "reserved"), ("192.0.2.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:10.0.0.1", "private"), ("64:ff9b::a00:1", "private"),
    ("2002:7f00:1::1", "loopback"), ("::127.0.0.1", "reserved"),
])
def test_non_public_addresses_are_closed(address, reason):
    assert address_refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808"])
def test_public_addresses_are_open(address):
    assert address_refusal(ipaddress.ip_address(address)) == ""


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "10.0.0.1", "[::1]", "::1",
                                  "[::ffff:127.0.0.1]", "100.64.0.1", "0.0.0.0"])
def test_a_listed_literal_private_address_is_still_refused(host):
    with pytest.raises(EgressRefused, match=r"is refused: a .* address") as refused:
        resolve_destination(host, 443, Egress(hosts=(host,)))
    assert canonical_host(host) in refused.value.message


def test_a_listed_public_literal_is_allowed_and_is_the_only_address(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("no DNS for an IP"))
    assert resolve_destination(PUBLIC, 443, Egress(hosts=(PUBLIC,))) == [PUBLIC]
    with pytest.raises(EgressRefused, match="not on this job's list"):
        resolve_destination(PUBLIC, 443, Egress(hosts=("github.com",)))


def test_hosts_and_ports_off_the_list_are_refused_before_any_lookup(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("looked up"))
    egress = Egress(hosts=("github.com", ".pythonhosted.org"), ports=(443,))
    with pytest.raises(EgressRefused, match=r"evil\.com is not on this job's list"):
        resolve_destination("evil.com", 443, egress)
    with pytest.raises(EgressRefused, match=r"Port 22 of github\.com is not allowed"):
        resolve_destination("github.com", 22, egress)


def fake_dns(monkeypatch, answers: dict[str, list[str]]):
    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in answers[host]]
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_to_public_addresses_answers_exactly_those(monkeypatch):
    fake_dns(monkeypatch, {"files.pythonhosted.org": [PUBLIC, "2606:4700::1111", PUBLIC]})
    egress = Egress(hosts=(".pythonhosted.org",))
    assert resolve_destination("Files.PythonHosted.org.", 443, egress) == \
        [PUBLIC, "2606:4700::1111"]


@pytest.mark.parametrize("answer", [["127.0.0.1"], [PUBLIC, "169.254.169.254"],
                                    ["10.1.2.3", PUBLIC], ["::ffff:127.0.0.1"], ["fe80::1%2"]])
def test_one_closed_address_among_the_answers_refuses_the_name(monkeypatch, answer):
    fake_dns(monkeypatch, {"rebind.example.org": answer})
    with pytest.raises(EgressRefused, match=r"rebind\.example\.org \(resolved to .*\) is refused"):
        resolve_destination("rebind.example.org", 443, Egress(hosts=("rebind.example.org",)))


def test_a_name_that_does_not_resolve_is_refused(monkeypatch):
    fake_dns(monkeypatch, {})
    with pytest.raises(EgressRefused, match="cannot be resolved"):
        resolve_destination("nowhere.example.org", 443, Egress(hosts=(".example.org",)))


def test_localhost_is_refused_unless_private_egress_is_allowed():
    """Real resolution: "localhost" comes from /etc/hosts, no network needed."""
    with pytest.raises(EgressRefused, match="loopback"):
        resolve_destination("localhost", 443, Egress(hosts=("localhost",)))
    addresses = resolve_destination("localhost", 443,
                                    Egress(hosts=("localhost",), allow_private=True))
    assert addresses and all(a in ("127.0.0.1", "::1") for a in addresses)


def test_private_egress_opens_the_lan_but_never_metadata_or_unspecified():
    allow = Egress(hosts=("10.0.0.1", "169.254.169.254", "0.0.0.0", "127.0.0.1"),
                   allow_private=True)
    assert resolve_destination("10.0.0.1", 443, allow) == ["10.0.0.1"]
    assert resolve_destination("127.0.0.1", 443, allow) == ["127.0.0.1"]
    for host in ("169.254.169.254", "0.0.0.0"):
        with pytest.raises(EgressRefused, match=r"metadata|unspecified"):
            resolve_destination(host, 443, allow)
