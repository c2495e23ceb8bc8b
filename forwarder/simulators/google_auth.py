"""The service account and the OAuth 2.0 JWT-bearer token endpoint of the Google simulator.

At construction a fresh RSA key is generated; :meth:`ServiceAccount.write_key_file`
writes it in Google's service-account JSON format, with ``token_uri`` pointing at the
simulator. ``POST /token`` checks the assertion the way Google does for domain-wide
delegation: RS256 signature by that key (``kid`` = ``private_key_id``), ``iss``, ``aud``,
the Reports scope, ``sub`` = the delegated admin, and a short-lived ``iat``/``exp``.

``aud`` may be :data:`GOOGLE_TOKEN_AUDIENCE`, which Google requires whatever URL the
request goes to (so every stock Google client signs it, e.g. ``google-auth`` whatever
``token_uri`` its key file holds), or the simulator's own token URL (the key file's
``token_uri``); any other audience is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forwarder.checkpoint.safefile import ensure_private_directory, replace_state_file
from forwarder.clock import Clock

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REPORTS_SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300

_BAD_TIMES = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


@dataclass(frozen=True)
class ServiceAccount:
    """A Google service account with its private key."""

    project_id: str
    client_email: str
    client_id: str
    private_key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(
        cls, project_id: str = "forwarder-sim", account: str = "siem-forwarder"
    ) -> ServiceAccount:
        """A new account with a fresh 2048-bit key."""
        return cls(
            project_id=project_id,
            client_email=f"{account}@{project_id}.iam.gserviceaccount.com",
            client_id=str(secrets.randbelow(9 * 10**20) + 10**20),
            private_key_id=secrets.token_hex(20),
            private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )

    @classmethod
    def from_key_file(cls, path: Path) -> ServiceAccount:
        """Load an account from a key file written by :meth:`write_key_file`."""
        data = orjson.loads(Path(path).read_bytes())
        key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA key")
        return cls(
            project_id=data["project_id"],
            client_email=data["client_email"],
            client_id=data["client_id"],
            private_key_id=data["private_key_id"],
            private_key=key,
        )

    @property
    def private_key_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def key_file_json(self, token_uri: str) -> dict[str, str]:
        """The service-account key file content, in Google's format."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_key_pem,
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + quote(self.client_email, safe=""),
            "universe_domain": "googleapis.com",
        }

    def write_key_file(self, path: Path, token_uri: str) -> Path:
        """Write the key file (mode 0600, atomically, never through a link) and return
        its path."""
        path = Path(path)
        ensure_private_directory(path.parent)
        body = orjson.dumps(self.key_file_json(token_uri), option=orjson.OPT_INDENT_2)
        replace_state_file(path, body)
        return path


class TokenError(Exception):
    """The token request is refused: ``{"error": ..., "error_description": ...}``, HTTP 400."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class TokenService:
    """Checks JWT-bearer assertions and issues access tokens that expire per the clock."""

    account: ServiceAccount
    delegated_admin: str
    clock: Clock
    token_lifetime: int = 3599
    _tokens: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def exchange(self, form: dict[str, str], audiences: Collection[str]) -> dict[str, Any]:
        """Handle a token request's form; return the success body or raise TokenError.

        ``audiences``: the ``aud`` values accepted (Google's and the endpoint's own)."""
        if form.get("grant_type") != JWT_BEARER_GRANT:
            raise TokenError("unsupported_grant_type", "Invalid grant_type.")
        assertion = form.get("assertion")
        if not assertion:
            raise TokenError("invalid_request", "Missing required parameter: assertion")
        claims = self._verify(assertion, audiences)
        scopes = str(claims.get("scope", "")).split()
        if REPORTS_SCOPE not in scopes:
            raise TokenError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        if claims.get("sub") != self.delegated_admin:
            raise TokenError(
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or "
                "client not authorized for any of the scopes requested.",
            )
        token = "ya29.sim-" + secrets.token_urlsafe(32)
        self._tokens[token] = self.clock.now() + self.token_lifetime
        return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def _verify(self, assertion: str, audiences: Collection[str]) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise TokenError("invalid_grant", "Invalid JWT: malformed assertion.") from None
        if header.get("alg") != "RS256" or header.get("kid") != self.account.private_key_id:
            raise TokenError("invalid_grant", "Invalid JWT Signature.")
        try:
            # Times and audience are checked below against the injected clock, not time.time().
            claims = jwt.decode(
                assertion,
                self.account.private_key.public_key(),
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError("invalid_grant", "Invalid JWT Signature.") from None
        except jwt.PyJWTError:
            raise TokenError("invalid_grant", "Invalid JWT: malformed assertion.") from None
        if claims.get("iss") != self.account.client_email:
            raise TokenError("invalid_grant", "Invalid JWT: the issuer is not the key's account.")
        audience = claims.get("aud")
        if not isinstance(audience, str) or audience not in audiences:
            raise TokenError("invalid_grant", "Invalid JWT: Failed audience check.")
        iat, exp = claims.get("iat"), claims.get("exp")
        now = self.clock.now()
        if (
            not isinstance(iat, int | float)
            or not isinstance(exp, int | float)
            or isinstance(iat, bool)
            or isinstance(exp, bool)
            or exp <= iat
            or exp - iat > MAX_ASSERTION_LIFETIME
            or iat > now + CLOCK_SKEW
            or exp < now - CLOCK_SKEW
        ):
            raise TokenError("invalid_grant", _BAD_TIMES)
        return claims

    def revoke_all(self) -> None:
        """Forget every access token issued so far (as a revoked grant or a password
        reset would): the next API call with one of them gets 401."""
        self._tokens.clear()

    def is_valid(self, access_token: str) -> bool:
        """Whether ``access_token`` was issued here and has not expired."""
        expires = self._tokens.get(access_token)
        return expires is not None and self.clock.now() < expires
