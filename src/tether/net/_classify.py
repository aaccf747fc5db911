"""Pure decisions about URLs and addresses: what may be connected to.

No I/O here: :func:`parse_url` normalises a URL or refuses it when parsers could
disagree about its host; :func:`address_refusal` says why an address may not be
reached (or ``None``). Both are tested over tables of hostile forms.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

import idna

from ._errors import URLRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata services; refused even when private ranges or loopback are allowed.
METADATA_NETWORKS: Final[tuple[IPNetwork, ...]] = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.254/32",   # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    "169.254.170.2/32",     # AWS ECS task metadata
    "169.254.170.23/32",    # AWS EKS pod identity
    "100.100.100.200/32",   # Alibaba Cloud
    "168.63.129.16/32",     # Azure WireServer
    "192.0.0.192/32",       # Oracle Cloud (legacy)
    "fd00:ec2::254/128",    # AWS over IPv6
    "fd00:ec2::23/128",     # AWS EKS pod identity over IPv6
))
#: Host names of metadata services (refused before any resolution).
METADATA_HOSTS: Final[frozenset[str]] = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.internal", "metadata.packet.net",
    "metadata.platformequinix.com",
})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

_SCHEMES = {"http": 80, "https": 443}
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>[/?#].*)?$",
                  re.S)
_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[0-9]{1,5}))?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_DOTTED_QUAD = re.compile(r"^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
                          r"(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$")


@dataclass(frozen=True, kw_only=True)
class CheckedURL:
    """A URL that passed :func:`parse_url`: ASCII host, explicit port, no user info."""

    scheme: str
    host: str
    port: int
    target: str
    ip: IPAddress | None

    @property
    def url(self) -> str:
        """The normalised URL to request: the port left out when it is the scheme's
        default, an IPv6 host in brackets, no user info."""
        host = f"[{self.ip}]" if isinstance(self.ip, ipaddress.IPv6Address) else self.host
        default = _SCHEMES[self.scheme] == self.port
        return f"{self.scheme}://{host}{'' if default else f':{self.port}'}{self.target}"


def _refuse(url: str, why: str, reason: str = "ambiguous_url") -> URLRefusedError:
    return URLRefusedError(f"refused URL {url[:200]!r}: {why}", reason=reason,
                           hint="use a plain http(s)://host/path URL")


def parse_url(raw: str) -> CheckedURL:
    """Normalise ``raw`` or refuse it.

    Refused: schemes other than http(s); any control character, space or backslash;
    user info (``user@host``, which also covers ``@`` after a port); percent-encoded or
    empty hosts; IPv4 addresses in any form but canonical dotted decimal (``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``, ``127.1``); IPv6 zone ids; invalid IDN. Normalised: the
    scheme and host are lower-cased, one trailing dot of the host dropped, non-ASCII
    host names converted to IDNA (punycode), IPv4-mapped IPv6 literals to IPv4.

    Raises:
        URLRefusedError: with ``reason="ambiguous_url"`` or ``"scheme"``.
    """
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw) or "\\" in raw:
        raise _refuse(raw, "it contains a control character, a space or a backslash")
    match = _URL.match(raw)
    if not match:
        raise _refuse(raw, "it is not an absolute http(s) URL")
    scheme = match["scheme"].lower()
    if scheme not in _SCHEMES:
        raise _refuse(raw, f"scheme {scheme!r} is not http or https", "scheme")
    authority = match["authority"]
    if "@" in authority:
        raise _refuse(raw, "it carries user info ('@' in the authority)")
    if "%" in authority:
        raise _refuse(raw, "its host is percent-encoded")
    hp = _HOST_PORT.match(authority)
    if not hp:
        raise _refuse(raw, "its host and port cannot be told apart")
    port = int(hp["port"]) if hp["port"] else _SCHEMES[scheme]
    if not 0 < port < 65536:
        raise _refuse(raw, f"port {port} is out of range")
    target = match["rest"] or "/"
    if target.startswith(("?", "#")):
        target = "/" + target
    target = target.split("#", 1)[0]
    host = hp["host"]
    if host.startswith("["):
        try:
            ip6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _refuse(raw, f"{host} is not an IPv6 address") from None
        ip: IPAddress = ip6.ipv4_mapped or ip6
        return CheckedURL(scheme=scheme, host=str(ip), port=port, target=target, ip=ip)
    host = _normalise_host(raw, host)
    if _DOTTED_QUAD.match(host):
        ip4 = ipaddress.IPv4Address(host)
        return CheckedURL(scheme=scheme, host=host, port=port, target=target, ip=ip4)
    return CheckedURL(scheme=scheme, host=host, port=port, target=target, ip=None)


def _normalise_host(raw: str, host: str) -> str:
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise _refuse(raw, "its host is empty")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode()
        except idna.IDNAError as e:
            raise _refuse(raw, f"its host is not a valid international name ({e})") from None
    host = host.lower()
    labels = host.split(".")
    if _NUMERIC_PART.match(labels[-1]):
        # WHATWG parses a host ending in a number as IPv4 (in decimal, octal or hex,
        # with 1 to 4 parts); only the canonical form is accepted.
        if not _DOTTED_QUAD.match(host):
            raise _refuse(raw, "its host is an IPv4 address in a non-canonical form")
        return host
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _refuse(raw, "its host is not a valid DNS name")
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError:
                raise _refuse(raw, f"label {label!r} is not valid punycode") from None
    return host


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: mapped, compatible, NAT64, 6to4, Teredo."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _category(ip: IPAddress) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier_grade_nat"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"):
        return "unique_local"
    if ip.is_private:
        return "private"
    if not ip.is_global or ip.is_reserved:
        return "reserved"
    return None


def address_refusal(ip: IPAddress, *, allowed_networks: tuple[IPNetwork, ...] = ()
                    ) -> str | None:
    """Why ``ip`` may not be connected to (a category name), or ``None`` when it may.

    Public (global) addresses may. So may an address inside ``allowed_networks``,
    unless it is a cloud metadata address: those are refused always, as is any IPv6
    address carrying an IPv4 one that would be refused.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = address_refusal(inner, allowed_networks=allowed_networks)
            if why is not None:
                return f"{why} (inside {ip})"
            return None  # reaches what the IPv4 address reaches, which is allowed
    if any(ip in net for net in METADATA_NETWORKS):
        return "metadata"
    category = _category(ip)
    if category is None:
        return None
    if any(ip.version == net.version and ip in net for net in allowed_networks):
        return None
    return category
