"""Service-account access tokens by the OAuth 2.0 JWT bearer grant (RFC 7523), with
domain-wide delegation: the assertion's ``sub`` is the admin user being impersonated.

The token endpoint is a peer too. Its answer is checked before anything of it is kept:
``access_token`` must be a non-empty RFC 6750 ``b64token`` (a CR/LF in it would break
every request's headers until it expired) of bounded length, ``token_type`` (when given)
``Bearer``, and ``expires_in`` a finite positive number, clamped to
[:data:`MIN_TOKEN_LIFETIME`, :data:`MAX_TOKEN_LIFETIME`] (counted as
``forwarder_source_capped_values_total{kind="token_lifetime"}``). The refresh margin is at
most half the lifetime, so however short the lifetime, tokens are requested at most once
per ``MIN_TOKEN_LIFETIME / 2``. Anything else is a :class:`MalformedResponseError`,
retried with backoff; a refused token is never stored nor used.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forwarder.clock import Clock
from forwarder.config.loader import ConfigError
from forwarder.observability.logging import get_logger
from forwarder.sources.base import CredentialsError, MalformedResponseError, TransientSourceError
from forwarder.sources.http import ApiClient

_log = get_logger("forwarder.source.google_auth")
REPORTS_AUDIT_SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
# Refresh this long before expiry so a token never expires in the middle of a window,
# but never more than REFRESH_FRACTION of the token's lifetime (a margin longer than the
# lifetime would ask for a token before every request).
REFRESH_MARGIN = 300.0
REFRESH_FRACTION = 0.5
# Lifetimes believed: Google's tokens last 3599 s (at most 12 h when configured). A
# shorter one is used as this (a request with a token that did expire gets a 401 and
# one refresh), a longer one as the maximum (a refresh early is harmless).
MIN_TOKEN_LIFETIME = 60.0
MAX_TOKEN_LIFETIME = 43_200.0
# Google's access tokens are up to 2048 bytes; anything far longer is not one.
MAX_ACCESS_TOKEN_LENGTH = 8192
# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A service account's address: name@PROJECT.iam.gserviceaccount.com.
SERVICE_ACCOUNT_DOMAIN = ".iam.gserviceaccount.com"


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The fields of a Google service-account JSON key that the grant needs."""

    client_email: str
    private_key: str
    private_key_id: str
    token_uri: str
    project_id: str = ""
    """The Cloud project whose quota the key's requests spend (:func:`key_project_id`)."""

    def __repr__(self) -> str:  # never print the private key
        return f"ServiceAccountKey(client_email={self.client_email!r})"

    @classmethod
    def from_json(cls, data: bytes, key: str) -> ServiceAccountKey:
        """Parse a key file; problems are config errors naming ``key``."""
        try:
            info: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ConfigError(key, "credentials file is not valid JSON") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ConfigError(key, 'credentials file is not a service-account key ("type")')
        missing = [
            name
            for name in ("client_email", "private_key", "private_key_id")
            if not isinstance(info.get(name), str) or not info[name]
        ]
        if missing:
            raise ConfigError(key, f"credentials file lacks {', '.join(missing)}")
        _check_signing_key(info["private_key"], key)
        return cls(
            client_email=info["client_email"],
            private_key=info["private_key"],
            private_key_id=info["private_key_id"],
            token_uri=info.get("token_uri") or DEFAULT_TOKEN_URL,
            project_id=key_project_id(info.get("project_id"), info["client_email"]),
        )


def key_project_id(project_id: object, client_email: str) -> str:
    """The Cloud project a key belongs to (Google's quotas are per project): the key's
    ``project_id``; else the project of a service-account address
    (``name@PROJECT.iam.gserviceaccount.com``); else the whole address, so that an
    account of unknown project gets a budget of its own rather than someone else's."""
    if isinstance(project_id, str) and project_id.strip():
        return project_id.strip()
    _, at, domain = client_email.rpartition("@")
    if at and domain.endswith(SERVICE_ACCOUNT_DOMAIN):
        project = domain[: -len(SERVICE_ACCOUNT_DOMAIN)]
        if project:
            return project
    return client_email


def _check_signing_key(private_key: str, key: str) -> None:
    """Refuse, at start, a ``private_key`` that cannot sign RS256 assertions: otherwise
    the daemon runs, every token request fails and it is never ready. The message names
    the file's key only, never any of its contents."""
    try:
        loaded = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            key,
            "private_key in the credentials file is not a readable PEM private key "
            "(damaged or edited?): create a new JSON key for the service account",
        ) from None
    if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size < 2048:
        raise ConfigError(
            key,
            "private_key in the credentials file is not an RSA key of 2048 bits or more, "
            "which RS256 needs: create a new JSON key for the service account",
        )


class ServiceAccountTokenProvider:
    """Caches an access token and refreshes it shortly before it expires.

    Concurrent callers share one refresh. ``invalidate`` drops the cached token after the
    API answered 401, so the next call fetches a new one.
    """

    def __init__(
        self,
        key: ServiceAccountKey,
        subject: str,
        client: ApiClient,
        clock: Clock,
        *,
        token_url: str | None = None,
        scopes: tuple[str, ...] = (REPORTS_AUDIT_SCOPE,),
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self._key = key
        self._subject = subject
        self._client = client
        self._clock = clock
        self.token_url = token_url or key.token_uri
        self._scope = " ".join(scopes)
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self._capping_lifetime = False
        self.requests = 0
        """Token requests sent (for tests and benchmarks)."""
        # Told every assertion signed and token obtained, so that no log line or error
        # text can show them (the daemon's Redactor).
        self._on_secret = on_secret or (lambda _secret: None)
        # Google's clock minus ours (set by the source): the assertion's iat/exp must be
        # right on Google's clock, which allows little skew.
        self.clock_offset = 0.0

    def assertion(self) -> str:
        issued = int(self._clock.now() + self.clock_offset)
        claims = {
            "iss": self._key.client_email,
            "scope": self._scope,
            "aud": self.token_url,
            "sub": self._subject,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        try:
            assertion = jwt.encode(
                claims,
                self._key.private_key,
                algorithm="RS256",
                headers={"kid": self._key.private_key_id},
            )
            self._on_secret(assertion)
            return assertion
        except (ValueError, TypeError, jwt.PyJWTError) as error:
            raise CredentialsError(
                f"cannot sign with the service-account private key: {type(error).__name__}"
            ) from None

    async def token(self) -> str:
        if self._token is not None and self._clock.now() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is None or self._clock.now() >= self._refresh_at:
                await self._client.retrying(self._refresh)
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = 0.0
        self._refresh_at = 0.0

    async def _refresh(self) -> None:
        requested = self._clock.now()
        self.requests += 1
        response = await self._client.request(
            "POST",
            self.token_url,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion()},
        )
        if response.status == 200:
            body = response.json_object()
            token = _access_token(body)
            lifetime = self._lifetime(body.get("expires_in"))
            self._on_secret(token)
            self._token = token
            self._expires_at = requested + lifetime
            self._refresh_at = self._expires_at - min(REFRESH_MARGIN, lifetime * REFRESH_FRACTION)
            return
        if response.status >= 500 or response.status == 429:
            raise TransientSourceError(f"token endpoint answered HTTP {response.status}")
        try:
            body = response.json_object()
            reason = f"{body.get('error')}: {body.get('error_description', '')}"
        except MalformedResponseError:
            reason = f"HTTP {response.status}"
        raise CredentialsError(
            f"token request refused ({reason}); check the key, that domain-wide delegation "
            f"grants the scope {self._scope}, and that the delegated admin exists"
        )

    def _lifetime(self, value: Any) -> float:
        """``expires_in`` as seconds, clamped to the believed range; refused unless it is
        a finite positive number."""
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise MalformedResponseError(
                "token response: expires_in is not a positive number of seconds"
            )
        lifetime = min(max(float(value), MIN_TOKEN_LIFETIME), MAX_TOKEN_LIFETIME)
        if lifetime == value:
            self._capping_lifetime = False
            return lifetime
        metrics = getattr(self._client, "metrics", None)
        if metrics is not None:
            metrics.source_capped_values.labels(self._client.source_id, "token_lifetime").inc()
        if not self._capping_lifetime:
            self._capping_lifetime = True
            _log.warning("token_lifetime_capped", expires_in=value, used=lifetime)
        return lifetime


def _access_token(body: dict[str, Any]) -> str:
    """The response's access token, refused unless it is a bearer token one can send."""
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise MalformedResponseError("token response lacks access_token")
    if len(token) > MAX_ACCESS_TOKEN_LENGTH:
        raise MalformedResponseError(
            f"token response: access_token of {len(token)} characters (more than "
            f"{MAX_ACCESS_TOKEN_LENGTH})"
        )
    if not B64TOKEN.fullmatch(token):
        # Not quoted: the value is a secret, and may hold control characters.
        raise MalformedResponseError(
            "token response: access_token holds characters a bearer token cannot have "
            "(RFC 6750 b64token)"
        )
    token_type = body.get("token_type")
    if token_type is not None and (
        not isinstance(token_type, str) or token_type.lower() != "bearer"
    ):
        raise MalformedResponseError("token response: token_type is not Bearer")
    return token
