"""Google API error envelopes: ``{"error": {code, message, errors[], status}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from forwarder.simulators.httputil import json_response

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class GoogleApiError(Exception):
    """An error the Reports API answers with its JSON envelope."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str,
        *,
        domain: str = "global",
        status: str | None = None,
        location: str | None = None,
        location_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.status = status or _STATUS_NAMES.get(code, "UNKNOWN")
        self.location = location
        self.location_type = location_type

    def envelope(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "message": self.message,
            "domain": self.domain,
            "reason": self.reason,
        }
        if self.location is not None:
            item["location"] = self.location
            item["locationType"] = self.location_type or "parameter"
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [item],
                "status": self.status,
            }
        }

    def response(self, headers: Mapping[str, str] | None = None) -> web.Response:
        return json_response(self.envelope(), self.code, headers)


def invalid_parameter(name: str, message: str) -> GoogleApiError:
    return GoogleApiError(400, message, "invalid", location=name, location_type="parameter")


def login_required() -> GoogleApiError:
    return GoogleApiError(
        401,
        "Request is missing required authentication credential. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential.",
        "required",
        location="Authorization",
        location_type="header",
    )


def invalid_credentials() -> GoogleApiError:
    return GoogleApiError(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
        "authError",
        location="Authorization",
        location_type="header",
    )


def quota_exceeded() -> GoogleApiError:
    return GoogleApiError(
        403,
        "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' "
        "of service 'admin.googleapis.com'.",
        "rateLimitExceeded",
        domain="usageLimits",
        status="PERMISSION_DENIED",
    )


def too_many_requests() -> GoogleApiError:
    return GoogleApiError(
        429,
        "Resource has been exhausted (e.g. check quota).",
        "rateLimitExceeded",
        domain="usageLimits",
    )


def backend_error(code: int) -> GoogleApiError:
    message = (
        "Internal error encountered." if code == 500 else "The service is currently unavailable."
    )
    return GoogleApiError(code, message, "backendError")
