"""Configuration of attested TLS connections and the interfaces of attesters and appraisers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from attestnet.errors import ConfigError

__all__ = [
    "DEFAULT_CMW_EXTENSION_TYPE",
    "DEFAULT_EXPORTER_LABEL",
    "DEFAULT_EXPORTER_LENGTH",
    "DEFAULT_MAX_FRAME_SIZE",
    "Appraiser",
    "AttestedTLSConfig",
    "Attester",
    "Binding",
    "Role",
    "TIKPrivateKey",
]

ResultT_co = TypeVar("ResultT_co", covariant=True)

TIKPrivateKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
"""Private key types usable as a TLS identity and for CertificateVerify."""

# draft-fossati-seat-expat leaves the cmw_attestation code point "TBD". 0xFFCA is taken
# from the TLS ExtensionType range reserved for private use (65280-65535, RFC 8446,
# section 11), avoiding 0xFF01 (renegotiation_info).
DEFAULT_CMW_EXTENSION_TYPE = 0xFFCA
# The label fixed by this project's design. The draft's current editor's copy uses
# "Attestation Binding", so the label stays configurable.
DEFAULT_EXPORTER_LABEL = b"Attestation"
DEFAULT_EXPORTER_LENGTH = 32
DEFAULT_MAX_FRAME_SIZE = 256 * 1024


class Attester(Protocol):
    """Produces CMW-encoded evidence whose nonce is `binder`."""

    def evidence(self, binder: bytes) -> bytes: ...


class Appraiser(Protocol[ResultT_co]):
    """Appraises evidence; returns an appraisal result or raises VerificationError.

    The appraiser must check that the evidence nonce equals `binder`.
    """

    def appraise(self, evidence: bytes, *, binder: bytes, at: datetime) -> ResultT_co: ...


class Binding(StrEnum):
    """The way evidence is bound to the TLS connection."""

    EXPAT = "expat"
    """RFC 9261 exported authenticator with cmw_attestation, after the handshake."""
    CERT = "cert"
    """Evidence in an id-pe-cmw extension of a per-connection certificate (replayable)."""
    NONE = "none"
    """Plain TLS 1.3 without attestation."""


class Role(StrEnum):
    """The part this side takes in attestation: attester, relying party or both."""

    ATTESTER = "attester"
    RELYING_PARTY = "relying_party"
    MUTUAL = "mutual"

    @property
    def attests(self) -> bool:
        return self in (Role.ATTESTER, Role.MUTUAL)

    @property
    def appraises(self) -> bool:
        return self in (Role.RELYING_PARTY, Role.MUTUAL)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AttestedTLSConfig:
    """Settings of one side of attested TLS connections.

    `certificate_chain` and `private_key` are this side's TLS identity; in the expat
    binding the end-entity key is the TIK. When they are None, a fresh EC P-256 key and
    self-signed certificate are generated once per server or connect call (the `cert`
    binding always generates one per connection). `trusted_ca_file` makes OpenSSL verify
    the peer's certificate chain. An unattested peer without a trusted CA is rejected
    unless `insecure_unauthenticated_peer` is set.

    NOTE: `trusted_ca_file` checks CA membership only, not the host name: any
    certificate the CA issued is accepted, and `server_hostname` only sets SNI.
    """

    binding: Binding = Binding.EXPAT
    role: Role = Role.RELYING_PARTY
    attester: Attester | None = None
    appraiser: Appraiser[Any] | None = None
    certificate_chain: tuple[x509.Certificate, ...] | None = None
    private_key: TIKPrivateKey | None = None
    trusted_ca_file: Path | None = None
    insecure_unauthenticated_peer: bool = False
    exporter_label: bytes = DEFAULT_EXPORTER_LABEL
    exporter_length: int = DEFAULT_EXPORTER_LENGTH
    cmw_extension_type: int = DEFAULT_CMW_EXTENSION_TYPE
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    handshake_timeout: float = 10.0
    """Seconds allowed for the TLS handshake plus the attestation exchange."""
    tls13_ciphersuites: str | None = None
    """OpenSSL TLS 1.3 cipher suite list, e.g. "TLS_AES_128_GCM_SHA256"; None keeps the default."""
    clock: Callable[[], datetime] = field(default=_utc_now)
    """Source of the appraisal time passed to the appraiser."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError when the settings cannot work together."""
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ConfigError("certificate_chain and private_key must be given together")
        if self.certificate_chain is not None and not self.certificate_chain:
            raise ConfigError("certificate_chain is empty; give the end-entity certificate first")
        if self.binding is Binding.NONE:
            if self.trusted_ca_file is None and not self.insecure_unauthenticated_peer:
                raise ConfigError(
                    "binding 'none' authenticates nobody: set trusted_ca_file, or set "
                    "insecure_unauthenticated_peer=True for a performance baseline"
                )
            return
        if self.role.attests and self.attester is None:
            raise ConfigError(f"role {self.role} needs an attester object")
        if self.role.appraises and self.appraiser is None:
            raise ConfigError(f"role {self.role} needs an appraiser object")
        if (
            not self.role.appraises
            and self.trusted_ca_file is None
            and not self.insecure_unauthenticated_peer
        ):
            raise ConfigError(
                f"role {self.role} does not appraise the peer: set trusted_ca_file to "
                "authenticate it, or insecure_unauthenticated_peer=True to accept any peer"
            )
        # Below 16 bytes the binder space gets small enough to help replay of
        # evidence made with a stolen TLS key.
        if not 16 <= self.exporter_length <= 255:
            raise ConfigError(f"exporter_length {self.exporter_length} is outside 16..255")
        if not self.exporter_label:
            raise ConfigError("exporter_label is empty")
        if not 0 <= self.cmw_extension_type <= 0xFFFF:
            raise ConfigError(f"cmw_extension_type {self.cmw_extension_type} is not a uint16")
        if self.cmw_extension_type == 13:
            raise ConfigError("cmw_extension_type 13 is signature_algorithms")
        if not 1024 <= self.max_frame_size <= 0xFFFFFF:
            raise ConfigError(
                f"max_frame_size {self.max_frame_size} is outside 1024..16777215 bytes"
            )
        if self.handshake_timeout <= 0:
            raise ConfigError(f"handshake_timeout {self.handshake_timeout} must be positive")
