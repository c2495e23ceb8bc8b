"""A private rsyslogd on 127.0.0.1 for the syslog sink tests, a test PKI, and parsers
that read what rsyslog wrote back.

rsyslogd runs with its own config, work directory and pid file under the test's tmp_path
(``-f`` so /etc/rsyslog.conf is never read; only imudp, imtcp and mmpstrucdata are
loaded, never imuxsock or imklog). Every input feeds one ruleset whose omfile action
writes each message as one JSON object per line: every RFC 5424 header field as rsyslog
parsed it, the structured data raw and as parsed by mmpstrucdata, the raw message and MSG.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kafka_harness import free_port, wait_listening

RSYSLOGD = "/usr/sbin/rsyslogd"
CLIENT_NAME = "forwarder.client.test"

# One JSON object per message. `:::json` escapes a property for a JSON string; `%$!%` is
# the message's local variables as JSON, where mmpstrucdata puts `rfc5424-sd`.
TEMPLATE = (
    "{"
    + ",".join(
        f'\\"{key}\\":\\"%{prop}:::json%\\"'
        for key, prop in (
            ("input", "inputname"),
            ("version", "protocol-version"),
            ("hostname", "hostname"),
            ("app_name", "app-name"),
            ("procid", "procid"),
            ("msgid", "msgid"),
            ("structured_data", "structured-data"),
            ("tag", "syslogtag"),
            ("programname", "programname"),
            ("raw", "rawmsg"),
            ("msg", "msg"),
        )
    )
    + ',\\"timestamp\\":\\"%timereported:::date-rfc3339%\\"'
    + ',\\"pri\\":%pri%,\\"facility\\":%syslogfacility%,\\"severity\\":%syslogseverity%'
    + ',\\"local\\":%$!%}\\n'
)


@dataclass(frozen=True, slots=True)
class Issued:
    cert: Path
    key: Path


class Pki:
    """A test CA (EC P-256) that issues server and client certificates into ``directory``."""

    def __init__(self, directory: Path, name: str = "forwarder test CA") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca = directory / "ca.pem"
        self.ca.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, common_name: str, *, client: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(common_name)]
        if not client:
            names += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        issued = Issued(self.directory / f"{stem}.pem", self.directory / f"{stem}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return issued


@dataclass(frozen=True, slots=True)
class Ports:
    udp: int
    tcp: int
    tls: int
    """Server-authenticated TLS (ossl driver)."""
    tls_gtls: int
    """Server-authenticated TLS (gtls driver)."""
    mtls: int
    """Mutual TLS: x509/name, only the permitted client name (gtls driver: the ossl
    driver of rsyslog 8.2302 accepts any client name when permittedPeer is set per input)."""

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


class Rsyslog:
    """A private rsyslogd with UDP, TCP, TLS (ossl and gtls) and mutual-TLS inputs.

    ``stop()`` then ``start()`` restarts it on the same ports, appending to the same file.
    """

    def __init__(self, directory: Path, pki: Pki, server: Issued) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ports = Ports.free()
        self.output = directory / "messages.jsonl"
        self.config = directory / "rsyslog.conf"
        self.pid_file = directory / "rsyslogd.pid"
        self.log = directory / "rsyslogd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._records: list[dict[str, Any]] = []
        self.config.write_text(self._config(pki, server))

    def _config(self, pki: Pki, server: Issued) -> str:
        p = self.ports
        tls = (
            f'streamDriver.mode="1" streamDriver.CAFile="{pki.ca}" '
            f'streamDriver.CertFile="{server.cert}" streamDriver.KeyFile="{server.key}"'
        )
        tcp = 'type="imtcp" address="127.0.0.1" ruleset="capture" supportOctetCountedFraming="on"'
        return f"""
global(workDirectory="{self.directory}" maxMessageSize="256k" net.enableDNS="off"
       parser.escapeControlCharactersOnReceive="off" defaultNetstreamDriverCAFile="{pki.ca}")
module(load="imudp")
module(load="imtcp")
module(load="mmpstrucdata")
template(name="fields" type="string" string="{TEMPLATE}")
ruleset(name="capture") {{
  action(type="mmpstrucdata")
  # So that `%$!%` is a JSON object even for a message without structured data.
  set $!received = "yes";
  action(type="omfile" file="{self.output}" template="fields")
}}
input(type="imudp" address="127.0.0.1" port="{p.udp}" ruleset="capture" name="udp")
input({tcp} port="{p.tcp}" name="tcp")
input({tcp} port="{p.tls}" name="tls" streamDriver.name="ossl"
      streamDriver.authMode="anon" {tls})
input({tcp} port="{p.tls_gtls}" name="tls_gtls" streamDriver.name="gtls"
      streamDriver.authMode="anon" {tls})
input({tcp} port="{p.mtls}" name="mtls" streamDriver.name="gtls"
      streamDriver.authMode="x509/name" permittedPeer=["{CLIENT_NAME}"] {tls})
"""

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.pid_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for port in (self.ports.tcp, self.ports.tls, self.ports.tls_gtls, self.ports.mtls):
            wait_listening(port)
        _wait_udp_bound(self.ports.udp)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def records(self) -> list[dict[str, Any]]:
        """Every record written so far (parsed once: the file is read from where the last
        call stopped, whole lines only)."""
        if self.output.exists():
            with self.output.open("rb") as output:
                output.seek(self._offset)
                data = output.read()
            end = data.rfind(b"\n") + 1
            self._offset += end
            self._records.extend(json.loads(line) for line in data[:end].splitlines() if line)
        return self._records

    def wait_records(
        self,
        count: int,
        where: Callable[[dict[str, Any]], bool] = lambda record: True,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """The records matching ``where`` once there are at least ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.records() if where(record)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def _wait_udp_bound(port: int, timeout: float = 10.0) -> None:
    """rsyslog holds the UDP port once binding it ourselves fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)
    raise AssertionError(f"nothing bound udp 127.0.0.1:{port} after {timeout}s")


# -- Parsers for the payloads, written from the CEF and LEEF specifications ---------------

_CEF_HEADER_ESCAPES = {"\\": "\\", "|": "|", "n": "\n", "r": "\r"}
_CEF_EXTENSION_ESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


def _unescape(text: str, escapes: dict[str, str]) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append(escapes.get(following, "\\" + following))
        else:
            out.append(char)
    return "".join(out)


def _split_unescaped(text: str, separator: str, limit: int) -> list[str]:
    """Split on ``separator`` not preceded by an escaping backslash, at most ``limit`` times."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator and len(parts) < limit:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        if len(parts) == limit:
            parts.append(text[index + 1 :])
            return parts
    parts.append("".join(current))
    return parts


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """The 7 header fields after ``CEF:0`` and the extension, unescaped."""
    assert line.startswith("CEF:0|"), line[:40]
    parts = _split_unescaped(line[len("CEF:0|") :], "|", 6)
    header = [_unescape(part, _CEF_HEADER_ESCAPES) for part in parts[:6]]
    extension = parts[6]
    # A key is a run of word characters followed by an unescaped '='; its value runs to the
    # space before the next key.
    keys = list(re.finditer(r"(?:^| )([A-Za-z0-9_]+)=", extension))
    values: dict[str, str] = {}
    for position, match in enumerate(keys):
        end = keys[position + 1].start() if position + 1 < len(keys) else len(extension)
        value = extension[match.end() : end]
        assert not re.search(r"(?<!\\)=", value.replace("\\\\", "")), value
        values[match.group(1)] = _unescape(value, _CEF_EXTENSION_ESCAPES)
    return header, values


def parse_leef(line: str) -> tuple[list[str], dict[str, str]]:
    """The 5 header fields after ``LEEF:2.0`` (the last one the delimiter) and the
    attributes, unescaped."""
    assert line.startswith("LEEF:2.0|"), line[:40]
    parts = _split_unescaped(line[len("LEEF:2.0|") :], "|", 5)
    header = [_unescape(part, _CEF_HEADER_ESCAPES) for part in parts[:5]]
    declared = header[4]
    delimiter = chr(int(declared[1:], 16)) if declared.startswith("x") else declared
    escapes = {"\\": "\\", "n": "\n", "r": "\r", delimiter: delimiter}
    if delimiter == "\t":
        escapes["t"] = "\t"
    attributes: dict[str, str] = {}
    for pair in _split_unescaped(parts[5], delimiter, 10_000):
        key, _, value = pair.partition("=")
        attributes[key] = _unescape(value, escapes)
    return header, attributes


@contextlib.contextmanager
def running(rsyslog: Rsyslog):  # type: ignore[no-untyped-def]
    rsyslog.start()
    try:
        yield rsyslog
    finally:
        rsyslog.stop()


# -- control characters ----------------------------------------------------------------------

# Everything that must never reach a receiver raw (written independently of the sink's
# table): C0, DEL, C1, the Unicode line and paragraph separators.
CONTROLS = frozenset(chr(code) for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029))
# A text with one of each kind, and backslash sequences that look like the escapes.
HOSTILE = (
    "NUL\x00 CR\r LF\n CRLF\r\n TAB\t LS\u2028 PS\u2029 NEL\x85 ESC\x1b[31m DEL\x7f "
    'CSI\x9b BEL\x07 VT\x0b FF\x0c literal\\n literal\\u2028 \\ " ] | = ^ é ✓ end'
)


def as_escaped(text: str, parsed: str = "") -> str:
    """``text`` as the documented escapes write it (LF ``\\n``, CR ``\\r``, TAB ``\\t``,
    other controls ``\\uXXXX``), except for the characters in ``parsed``, which the
    format's parser turns back into themselves."""
    out: list[str] = []
    for char in text:
        if char in parsed or char not in CONTROLS:
            out.append(char)
        else:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\u{ord(char):04x}"))
    return "".join(out)


_SD_ESCAPES = {'"': '"', "\\": "\\", "]": "]", "n": "\n", "r": "\r", "t": "\t"}


def decode_structured_data(raw: str) -> dict[str, dict[str, str]]:
    """RFC 5424 STRUCTURED-DATA as it was on the wire, with the sink's escapes undone too:
    the exact values the sink was given."""
    elements: dict[str, dict[str, str]] = {}
    position = 0
    while position < len(raw):
        assert raw[position] == "[", raw[position:]
        end_of_id = min(i for i in (raw.find(" ", position), raw.find("]", position)) if i > 0)
        params = elements[raw[position + 1 : end_of_id]] = {}
        position = end_of_id
        while raw[position] == " ":
            equals = raw.index("=", position)
            name = raw[position + 1 : equals]
            assert raw[equals + 1] == '"'
            value: list[str] = []
            position = equals + 2
            while raw[position] != '"':
                if raw[position] == "\\":
                    following = raw[position + 1]
                    if following == "u":
                        value.append(chr(int(raw[position + 2 : position + 6], 16)))
                        position += 6
                        continue
                    value.append(_SD_ESCAPES[following])
                    position += 2
                    continue
                value.append(raw[position])
                position += 1
            params[name] = "".join(value)
            position += 1
        assert raw[position] == "]"
        position += 1
    return elements
