"""Who a sharing change is about: the grantee, guest, subscriber or recipient a Calendar
parameter names, classified, and whether it is outside the organization.

Google writes an ACL *scope* into ``grantee_email``, not always a person: a whole domain
is ``<domain>@allusers.d.calendar.google.com`` and "anyone on the internet" is
``__public_principal__@public.calendar.google.com``. Split like an address, those read
as a user named ``example.com`` at ``allusers.d.calendar.google.com``, which hides
exactly the grants a SOC must see. So every such parameter is classified by the rules of
:data:`PRINCIPAL_RULES` (first match wins) into a kind (:data:`KINDS`), and only a
``user`` fills ``user.target.*``. The rules and :data:`PARTY_PARAMETERS` are printed in
``docs/schema.md``.

Whether a party is *external* needs the organization's own domains
(:class:`InternalDomains`, the ``internal_domains`` setting of a Google source): without
them the flag is left out ("unknown"), never guessed from the actor's domain. The one
exception is the public principal, which is outside every organization by definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

USER = "user"
GROUP = "group"
DOMAIN = "domain"
PUBLIC = "public"
RESOURCE = "resource"
CALENDAR = "calendar"
UNKNOWN = "unknown"
KINDS = (USER, GROUP, DOMAIN, PUBLIC, RESOURCE, CALENDAR, UNKNOWN)
"""Every value of ``google_workspace.calendar.<party>.kind``."""

# How a rule matches the parameter's value (lower-cased first).
PREFIX = "prefix"
SUFFIX = "suffix"
EXACT = "exact"
ADDRESS = "address"
BARE_DOMAIN = "bare_domain"


@dataclass(frozen=True, slots=True)
class PrincipalRule:
    """One row of the classification table."""

    match: str
    """``prefix``, ``suffix``, ``exact``, ``address`` (``local@domain``) or ``bare_domain``."""
    text: str
    """The prefix / suffix / exact value (empty for ``address`` and ``bare_domain``)."""
    kind: str
    reason: str
    """Why the value is of this kind: printed in the docs."""


PRINCIPAL_RULES: tuple[PrincipalRule, ...] = (
    # The Calendar API's ACL rule ids (`scope.type:scope.value`), in case a record carries one.
    PrincipalRule(PREFIX, "user:", USER, "Calendar ACL rule id of a user scope"),
    PrincipalRule(PREFIX, "group:", GROUP, "Calendar ACL rule id of a group scope"),
    PrincipalRule(PREFIX, "domain:", DOMAIN, "Calendar ACL rule id of a domain scope"),
    PrincipalRule(EXACT, "default", PUBLIC, "Calendar ACL rule id of the public scope"),
    PrincipalRule(
        SUFFIX, "@public.calendar.google.com", PUBLIC,
        "the public principal (`__public_principal__@...`): anyone, signed in or not",
    ),
    PrincipalRule(
        SUFFIX, "@allusers.d.calendar.google.com", DOMAIN,
        "every user of the domain before `@` (domain-wide sharing)",
    ),
    PrincipalRule(
        SUFFIX, "@resource.calendar.google.com", RESOURCE,
        "a room or equipment calendar: no person, no organization in the id",
    ),
    PrincipalRule(
        SUFFIX, "@group.calendar.google.com", CALENDAR,
        "a secondary calendar's id: a calendar, not a person or a Google Group",
    ),
    PrincipalRule(
        SUFFIX, "@group.v.calendar.google.com", CALENDAR,
        "a Google-provided calendar (holidays, ...)",
    ),
    PrincipalRule(
        SUFFIX, "@import.calendar.google.com", CALENDAR, "an imported (iCal) calendar"
    ),
    PrincipalRule(
        ADDRESS, "", USER,
        "any other address: a user account, or a Google Group (the record does not say "
        "which; a group's address is not told apart)",
    ),
    PrincipalRule(BARE_DOMAIN, "", DOMAIN, "a bare domain name: a domain scope"),
)  # fmt: skip
"""How a party's value is classified: the first matching rule wins; no match is ``unknown``."""

PARTY_PARAMETERS: Mapping[str, str] = MappingProxyType(
    {
        "grantee_email": "grantee",
        "event_guest": "guest",
        "recipient_email": "recipient",
        "subscriber_calendar_id": "subscriber",
    }
)
"""Parameter naming a party -> the object under ``google_workspace.calendar`` describing it."""

# Kinds that are an account's address: they go to related.user; only USER to user.target.
ADDRESS_KINDS = frozenset({USER, GROUP})
# A host name as DNS allows it (letters, digits, hyphens; at least two labels).
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")
_ADDRESS = re.compile(r"[^@\s]+@([^@\s]+)")


@dataclass(frozen=True, slots=True)
class Principal:
    """A classified party: its kind, its address (user/group) and its domain, if known."""

    kind: str
    email: str | None = None
    domain: str | None = None


def _domain(text: str) -> str | None:
    candidate = text.lower().rstrip(".")
    return candidate if _DOMAIN.fullmatch(candidate) else None


# The same few grantees and guests come back all day: the classification is cached (the
# result is immutable; an unusual value only evicts older ones).
@lru_cache(maxsize=4096)
def classify(value: str) -> Principal:
    """The kind of party ``value`` (a parameter's raw text) names; see :data:`PRINCIPAL_RULES`."""
    lowered = value.strip().lower()
    for rule in PRINCIPAL_RULES:
        match = rule.match
        if match == PREFIX and lowered.startswith(rule.text):
            return _scoped(rule.kind, value.strip()[len(rule.text) :])
        if match == EXACT and lowered == rule.text:
            return Principal(rule.kind)
        if match == SUFFIX and lowered.endswith(rule.text):
            if rule.kind == DOMAIN:
                return Principal(DOMAIN, domain=_domain(lowered[: -len(rule.text)]))
            return Principal(rule.kind)
        if match == ADDRESS and (found := _ADDRESS.fullmatch(value.strip())) is not None:
            return Principal(rule.kind, value.strip(), _domain(found.group(1)))
        if match == BARE_DOMAIN and (domain := _domain(lowered)) is not None:
            return Principal(rule.kind, domain=domain)
    return Principal(UNKNOWN)


def _scoped(kind: str, rest: str) -> Principal:
    """The value of a ``type:value`` ACL rule id."""
    if kind == DOMAIN:
        domain = _domain(rest)
        return Principal(DOMAIN, domain=domain) if domain else Principal(UNKNOWN)
    found = _ADDRESS.fullmatch(rest)
    if found is None:
        return Principal(UNKNOWN)
    return Principal(kind, rest, _domain(found.group(1)))


class InternalDomains:
    """The organization's own domains: ``example.com`` matches itself only, ``*.example.com``
    any subdomain of it (not ``example.com`` itself: list both for both).

    Exact by default because a subdomain may be delegated to someone else (a marketing
    vendor, a test tenant); widening is a deliberate, visible choice.
    """

    __slots__ = ("exact", "suffixes")

    def __init__(self, domains: Iterable[str]) -> None:
        exact: set[str] = set()
        suffixes: set[str] = set()
        for entry in domains:
            text = entry.strip().lower().rstrip(".")
            wildcard = text.startswith("*.")
            name = text[2:] if wildcard else text
            if _DOMAIN.fullmatch(name) is None:
                raise ValueError(f"not a domain name: {entry!r} (use example.com or *.example.com)")
            if wildcard:
                suffixes.add("." + name)
            else:
                exact.add(name)
        if not exact and not suffixes:
            raise ValueError("internal_domains is empty: leave it out when unknown")
        self.exact = frozenset(exact)
        self.suffixes = tuple(sorted(suffixes))

    def __contains__(self, domain: object) -> bool:
        if type(domain) is not str:
            return False
        name = domain.lower().rstrip(".")
        return name in self.exact or name.endswith(self.suffixes)

    def __repr__(self) -> str:
        entries = sorted(self.exact) + sorted("*" + suffix for suffix in self.suffixes)
        return f"InternalDomains({entries!r})"


def party_fields(value: str, internal: InternalDomains | None) -> tuple[Principal, dict[str, Any]]:
    """The classification and the vendor object (``value``, ``kind``, ``email``, ``domain``,
    ``external``) of one party; ``external`` only when it can be known."""
    principal = classify(value)
    fields: dict[str, Any] = {"value": value, "kind": principal.kind}
    if principal.email is not None:
        fields["email"] = principal.email
    if principal.domain is not None:
        fields["domain"] = principal.domain
    if principal.kind == PUBLIC:
        fields["external"] = True  # anyone: outside every organization, no setting needed
    elif internal is not None and principal.domain is not None:
        fields["external"] = principal.domain not in internal
    return principal, fields
