"""TLS client contexts for the sinks, built from a :class:`TlsConfig`."""

from __future__ import annotations

import ssl

from forwarder.config.loader import ConfigError, read_secret
from forwarder.config.model import TlsConfig


def client_context(config: TlsConfig, key: str) -> ssl.SSLContext:
    """A client context: TLS 1.2+, the server certificate and host name verified unless
    ``verify`` is false, an optional client certificate. Problems name ``key``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if config.ca_file is not None:
            context.load_verify_locations(cafile=str(config.ca_file))
        if config.cert_file is not None and config.key_file is not None:
            password = (
                read_secret(None, config.key_password_file, f"{key}.key_password")
                if config.key_password_file is not None
                else None
            )
            context.load_cert_chain(str(config.cert_file), str(config.key_file), password)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(key, f"cannot load TLS files: {error}") from None
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
