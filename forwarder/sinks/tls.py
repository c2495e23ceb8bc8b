"""TLS client contexts for the sinks, built from a :class:`TlsConfig`."""

from __future__ import annotations

import ssl
from pathlib import Path

from forwarder.config.loader import ConfigError, read_secret
from forwarder.config.model import TlsConfig


def client_context(config: TlsConfig, key: str) -> ssl.SSLContext:
    """A client context: TLS 1.2+, the server certificate and host name verified unless
    ``verify`` is false, an optional client certificate. Problems name ``key``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(config, name)
        if path is not None:
            _check_readable(path, f"{key}.{name}")
    if config.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(config.ca_file))
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                f"{key}.ca_file",
                f"{config.ca_file} holds no PEM CA certificate ({_reason(error)})",
            ) from None
    if config.cert_file is not None and config.key_file is not None:
        password = (
            read_secret(None, config.key_password_file, f"{key}.key_password")
            if config.key_password_file is not None
            else None
        )
        try:
            context.load_cert_chain(str(config.cert_file), str(config.key_file), password)
        except (OSError, ssl.SSLError) as error:
            # Never the key's contents: only which files, and the library's reason code.
            raise ConfigError(
                f"{key}.cert_file",
                f"cannot use {config.cert_file} with the key {config.key_file} "
                f"({_reason(error)}): both PEM, the key matching the certificate, and "
                "key_password_file set if the key is encrypted",
            ) from None
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _check_readable(path: Path, key: str) -> None:
    """A TLS file that is missing or unreadable, named by key and path (OpenSSL's own
    error says neither)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise ConfigError(key, f"cannot read {path}: {error.strerror}") from None


def _reason(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or type(error).__name__
    return error.strerror or type(error).__name__
