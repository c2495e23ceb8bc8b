"""Secret redaction by value and by shape, for every text the daemon shows an operator.

Field names are not enough: a peer may echo a credential back inside an error body (an
API answering 401 with the token it refused, a proxy reflecting the request), and that
text then travels into a log line, ``/readyz`` or a dead letter's ``detail``. So the
:class:`Redactor` knows every secret the config loaded and every token the daemon
obtained since (the newest few), and replaces each occurrence, in the forms it is likely
to be echoed in (as is, JSON-escaped, URL-encoded). Strings shaped like credentials (a
JWT, an ``Authorization`` value, ``access_token=`` parameters, a PEM private key, a
Google OAuth token) are replaced too, whether or not this daemon knows them.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import orjson

REDACTED = "[REDACTED]"
REDACTED_BYTES = REDACTED.encode()
# Shorter values would also match ordinary words and numbers in log lines.
MIN_SECRET_LENGTH = 6
# Tokens obtained at run time (access tokens, signed assertions): the newest are kept,
# older ones have long expired.
RUNTIME_SECRETS_KEPT = 32

_SHAPES = (
    # A JWT or JWS (header.payload.signature, the first two base64url JSON objects).
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # PEM private keys, also JSON-escaped (\n) inside a credentials file echoed back.
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        REDACTED,
    ),
    # Google OAuth access and refresh tokens.
    (re.compile(r"\bya29\.[A-Za-z0-9._~+/-]+"), REDACTED),
    (re.compile(r"\b1//[A-Za-z0-9._~+/-]{20,}"), REDACTED),
    # Authorization header values.
    (re.compile(r"\b(Bearer|Basic|Splunk)\s+[A-Za-z0-9._~+/=-]+", re.I), rf"\1 {REDACTED}"),
    # Credentials in query strings and form bodies.
    (
        re.compile(
            r"([?&;\s\"'(]|^)((?:access_token|refresh_token|id_token|token|key|api_key|apikey|"
            r"password|secret|assertion|client_secret|sig)=)[^&\s\"')]+",
            re.I,
        ),
        rf"\1\2{REDACTED}",
    ),
)


class Redactor:
    """Knows the daemon's secrets and replaces them in text and nested values.

    One per daemon (no module state): the CLI creates it, logging, ``/readyz`` and the
    dead-letter writer use it, the config loader and the token providers add to it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._static: set[str] = set()
        self._runtime: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None
        self._known: list[bytes] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str, *, runtime: bool = False) -> None:
        """Redact ``secret`` from now on. ``runtime``: a token obtained while running,
        of which only the newest :data:`RUNTIME_SECRETS_KEPT` are kept."""
        if not isinstance(secret, str):
            return
        variants = _variants(secret)
        if not variants:
            return
        if runtime:
            for variant in variants:
                self._runtime[variant] = None
                self._runtime.move_to_end(variant)
            while len(self._runtime) > RUNTIME_SECRETS_KEPT * 3:
                self._runtime.popitem(last=False)
        else:
            self._static.update(variants)
        self._pattern = None
        self._known = None

    def __len__(self) -> int:
        return len(self._static) + len(self._runtime)

    def redact(self, text: str) -> str:
        """``text`` with every known secret and credential-shaped string replaced."""
        if not text:
            return text
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        for shape, replacement in _SHAPES:
            text = shape.sub(replacement, text)
        return text

    def redact_value(self, value: Any) -> Any:
        """A copy of ``value`` (JSON-like: dicts, lists, strings...) with every string
        redacted; dict keys too."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(key)): self.redact_value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(item) for item in value]
        return value

    def redact_known(self, data: bytes) -> bytes:
        """``data`` (a peer's answer, before anything is parsed or cut from it) with every
        known secret replaced; credential shapes are left to :meth:`redact`. Plain byte
        replacement: cheap enough for every answer a peer sends, and it must come before
        an excerpt is cut, or a secret split by the cut would no longer match."""
        known = self._known
        if known is None:
            values = self._static | self._runtime.keys()
            known = self._known = sorted((value.encode() for value in values), key=len)[::-1]
        for value in known:
            if value in data:
                data = data.replace(value, REDACTED_BYTES)
        return data

    def redact_bytes(self, data: bytes) -> bytes:
        """Redact UTF-8 text (a serialized document); invalid bytes are replaced."""
        return self.redact(data.decode("utf-8", "replace")).encode()

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None:
            values = self._static | self._runtime.keys()
            if not values:
                return None
            # Longest first, so a secret that contains another is replaced whole.
            alternatives = sorted(values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(value) for value in alternatives))
        return self._pattern


def _variants(secret: str) -> set[str]:
    """The forms a secret is echoed in: as is, JSON-escaped (with or without ``\\/``),
    URL-encoded."""
    secret = secret.strip()
    if len(secret) < MIN_SECRET_LENGTH:
        return set()
    escaped = orjson.dumps(secret).decode()[1:-1]
    # Some JSON encoders also escape "/" (base64 and JWTs hold slashes).
    variants = {secret, escaped, escaped.replace("/", "\\/")}
    variants.add(urllib.parse.quote(secret, safe=""))
    variants.add(urllib.parse.quote_plus(secret, safe=""))
    if "\n" in secret:
        # Multi-line secrets (PEM keys): each long line is a secret of its own.
        variants.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= 16)
    return {variant for variant in variants if len(variant) >= MIN_SECRET_LENGTH}
