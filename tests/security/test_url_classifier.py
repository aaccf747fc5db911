"""The URL and address classifier, as pure functions over tables of hostile forms."""

from __future__ import annotations

import ipaddress

import pytest

from tether.net import HttpPolicy, URLRefusedError, address_refusal, host_matches, parse_url

REFUSED_URLS = [
    "ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1:25/", "javascript:alert(1)",
    "//example.com/", "example.com/path", "http:/example.com/", "http:example.com",
    "http://example.com\\@evil.com/", "http:\\\\example.com\\", "http://exa mple.com/",
    "http://example.com/a b", "http://example.com/\r\nX-Injected: 1", "http://exa\tmple.com/",
    "http://example.com\x00.evil.com/", "http://example.com/\x7f", "http://\x0bexample.com/",
    "http://user@example.com/", "http://user:pw@example.com/", "http://example.com:80@evil.com/",
    "http://example.com@evil.com/", "http://@example.com/", "http://a%2ecom/",
    "http://%31%32%37.0.0.1/", "http://2130706433/", "http://017700000001/",
    "http://0x7f000001/", "http://0x7f.1/", "http://0x7f.0.0.1/", "http://0177.0.0.1/",
    "http://127.1/", "http://127.0.1/", "http://127.000.000.001/", "http://1.2.3.4.5/",
    "http://256.0.0.1/", "http://1.2.3.0x4/", "http://a.b.123/",
    "http://[fe80::1%25eth0]/", "http://[::1/", "http://[127.0.0.1]/", "http://[zz::]/",
    "http:///path", "http://:80/", "http://./", "http://example..com/", "http://-a.com/",
    "http://a-.com/", "http://" + "a" * 64 + ".com/", "http://a_b.com/",
    "http://example.com:99999/", "http://example.com:0/", "http://example.com:8o/",
    "http://example.com:80:80/", "http://xn--zz.com/",
    "http://\uff10x7f.1/",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_ambiguous_urls_are_refused(url: str) -> None:
    with pytest.raises(URLRefusedError) as info:
        parse_url(url)
    assert info.value.reason in {"ambiguous_url", "scheme"}


NORMALISED = [
    ("http://Example.COM", "http://example.com/", "example.com", 80),
    ("HTTPS://example.com.:443/a?b=1#frag", "https://example.com/a?b=1", "example.com", 443),
    ("http://example.com:8080?q", "http://example.com:8080/?q", "example.com", 8080),
    ("http://bücher.de/x", "http://xn--bcher-kva.de/x", "xn--bcher-kva.de", 80),
    ("http://EXAMPLE.xn--p1ai/", "http://example.xn--p1ai/", "example.xn--p1ai", 80),
    ("http://[::ffff:127.0.0.1]/", "http://127.0.0.1/", "127.0.0.1", 80),
    ("http://[::FFFF:a9fe:a9fe]/", "http://169.254.169.254/", "169.254.169.254", 80),
    ("http://[::1]:8000/p", "http://[::1]:8000/p", "::1", 8000),
    ("http://127.0.0.1/", "http://127.0.0.1/", "127.0.0.1", 80),
    ("http://localhost./", "http://localhost/", "localhost", 80),
    ("http://127.0.0.1./x", "http://127.0.0.1/x", "127.0.0.1", 80),
    ("http://exa\u200bmple.com/", "http://example.com/", "example.com", 80),  # UTS 46 drops it
]


@pytest.mark.parametrize(("url", "normal", "host", "port"), NORMALISED)
def test_urls_are_normalised_before_the_check(url: str, normal: str, host: str,
                                              port: int) -> None:
    checked = parse_url(url)
    assert (checked.url, checked.host, checked.port) == (normal, host, port)


ADDRESSES = [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("169.254.1.1", "link_local"), ("fe80::1", "link_local"),
    ("100.64.0.1", "carrier_grade_nat"), ("100.127.255.254", "carrier_grade_nat"),
    ("fc00::1", "unique_local"), ("fd12:3456::1", "unique_local"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("169.254.169.254", "metadata"), ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"), ("168.63.129.16", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"), ("::127.0.0.1", "loopback"), ("::a9fe:a9fe", "metadata"),
    ("64:ff9b::7f00:1", "loopback"), ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b:1::a00:1", "private"), ("2002:7f00:1::", "loopback"),
    ("2002:a9fe:a9fe::1", "metadata"), ("2002:c0a8:101::", "private"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
    # Special-purpose ranges (benchmarking, reserved, documentation, "this network").
    ("198.18.0.1", "private"), ("240.0.0.1", "private"), ("255.255.255.255", "private"),
    ("192.0.2.1", "private"), ("2001:db8::1", "private"), ("0.1.2.3", "private"),
    ("8.8.8.8", None), ("1.1.1.1", None), ("2606:4700:4700::1111", None),
    ("::ffff:8.8.8.8", None), ("64:ff9b::808:808", None), ("2002:808:808::1", None),
]


@pytest.mark.parametrize(("address", "category"), ADDRESSES)
def test_addresses_are_classified(address: str, category: str | None) -> None:
    why = address_refusal(ipaddress.ip_address(address))
    assert (why.split(" ")[0] if why else None) == category


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254",
                                     "64:ff9b::a9fe:a9fe", "100.100.100.200"])
def test_metadata_stays_refused_when_private_ranges_are_allowed(address: str) -> None:
    allow_all = tuple(ipaddress.ip_network(n) for n in (
        "0.0.0.0/0", "::/0", "169.254.0.0/16", "fd00::/8", "100.64.0.0/10"))
    assert address_refusal(ipaddress.ip_address(address), allowed_networks=allow_all)


def test_allowed_networks_open_exactly_those_networks() -> None:
    nets = (ipaddress.ip_network("127.0.0.2/32"), ipaddress.ip_network("10.1.0.0/16"))
    assert address_refusal(ipaddress.ip_address("127.0.0.2"), allowed_networks=nets) is None
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), allowed_networks=nets)
    assert address_refusal(ipaddress.ip_address("10.1.200.3"), allowed_networks=nets) is None
    assert address_refusal(ipaddress.ip_address("10.2.0.1"), allowed_networks=nets)
    # The mapped form of an allowed address is allowed; of a refused one, refused.
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.2"), allowed_networks=nets) \
        is None
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed_networks=nets)


@pytest.mark.parametrize(("host", "pattern", "match"), [
    ("api.example.com", "api.example.com", True), ("api.example.com", "example.com", False),
    ("example.com", "*.example.com", False), ("a.example.com", "*.example.com", True),
    ("a.b.example.com", "*.example.com", True), ("evilexample.com", "*.example.com", False),
    ("example.com.evil.com", "example.com", False), ("example.com.evil.com", "*.example.com",
                                                     False),
    ("xexample.com", "example.com", False),
])
def test_host_patterns_match_by_label(host: str, pattern: str, match: bool) -> None:
    assert host_matches(host, pattern) is match


def test_allowlist_entries_are_normalised() -> None:
    policy = HttpPolicy(allowed_hosts=frozenset({"API.Example.COM.", "[::1]", "*.Svc.io"}))
    assert policy.host_allowed("api.example.com") and policy.host_allowed("x.svc.io")
    assert policy.listed_address(ipaddress.ip_address("::1"))
    assert not policy.host_allowed("example.com") and not policy.host_allowed("svc.io")
