"""Attested TLS: RFC 9261 exported authenticators, bindings, blocking and asyncio adapters.

Start with `connect` / `listen` (blocking) or `open_connection` / `start_server`
(asyncio) and an `AttestedTLSConfig`. docs/protocol.md gives the wire format.
"""

from attestnet.tls._establish import AttestationInfo
from attestnet.tls.blocking import AttestedConnection, AttestedServer, connect, listen
from attestnet.tls.config import (
    DEFAULT_CMW_EXTENSION_TYPE,
    DEFAULT_EXPORTER_LABEL,
    DEFAULT_EXPORTER_LENGTH,
    DEFAULT_MAX_FRAME_SIZE,
    Appraiser,
    AttestedTLSConfig,
    Attester,
    Binding,
    Role,
    TIKPrivateKey,
)
from attestnet.tls.errors import (
    AlertDescription,
    AttestationProtocolError,
    AttestationTimeout,
    FrameTooLarge,
    MalformedMessage,
    PeerAborted,
    UnexpectedMessage,
    UnsupportedExtension,
)
from attestnet.tls.identity import Identity, generate_identity

__all__ = [
    "DEFAULT_CMW_EXTENSION_TYPE",
    "DEFAULT_EXPORTER_LABEL",
    "DEFAULT_EXPORTER_LENGTH",
    "DEFAULT_MAX_FRAME_SIZE",
    "AlertDescription",
    "Appraiser",
    "AttestationInfo",
    "AttestationProtocolError",
    "AttestationTimeout",
    "AttestedConnection",
    "AttestedServer",
    "AttestedTLSConfig",
    "Attester",
    "Binding",
    "FrameTooLarge",
    "Identity",
    "MalformedMessage",
    "PeerAborted",
    "Role",
    "TIKPrivateKey",
    "UnexpectedMessage",
    "UnsupportedExtension",
    "connect",
    "generate_identity",
    "listen",
]
