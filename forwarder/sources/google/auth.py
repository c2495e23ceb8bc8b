"""Service-account access tokens by the OAuth 2.0 JWT bearer grant (RFC 7523), with
domain-wide delegation: the assertion's ``sub`` is the admin user being impersonated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

from forwarder.clock import Clock
from forwarder.config.loader import ConfigError
from forwarder.sources.base import CredentialsError, MalformedResponseError, TransientSourceError
from forwarder.sources.http import ApiClient

REPORTS_AUDIT_SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
# Refresh this long before expiry so a token never expires in the middle of a window.
REFRESH_MARGIN = 300.0


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The fields of a Google service-account JSON key that the grant needs."""

    client_email: str
    private_key: str
    private_key_id: str
    token_uri: str

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
        return cls(
            client_email=info["client_email"],
            private_key=info["private_key"],
            private_key_id=info["private_key_id"],
            token_uri=info.get("token_uri") or DEFAULT_TOKEN_URL,
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
        self._lock = asyncio.Lock()
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
        if self._token is not None and self._clock.now() < self._expires_at - REFRESH_MARGIN:
            return self._token
        async with self._lock:
            if self._token is None or self._clock.now() >= self._expires_at - REFRESH_MARGIN:
                await self._client.retrying(self._refresh)
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = 0.0

    async def _refresh(self) -> None:
        requested = self._clock.now()
        response = await self._client.request(
            "POST",
            self.token_url,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion()},
        )
        if response.status == 200:
            body = response.json_object()
            token, lifetime = body.get("access_token"), body.get("expires_in")
            if not isinstance(token, str) or not isinstance(lifetime, int | float):
                raise MalformedResponseError("token response lacks access_token or expires_in")
            self._on_secret(token)
            self._token = token
            self._expires_at = requested + float(lifetime)
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
