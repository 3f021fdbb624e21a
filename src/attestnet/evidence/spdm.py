"""NVIDIA GPU attestation reports: SPDM 1.1 GET_MEASUREMENTS request || MEASUREMENTS response.

An NVIDIA Hopper GPU responds to a signed GET_MEASUREMENTS request with a MEASUREMENTS
response (DMTF DSP0274 1.1). The attestation report is the request followed by the
response, and the response ends with an ECDSA signature (r||s, 96 bytes for P-384)
with SHA-384 over everything before it. The signing key is the leaf of the GPU's
certificate chain (GSP FMC leaf -> GSP BROM -> Provisioner ICA -> GH100 Identity ->
NVIDIA Device Identity CA), which is passed as collateral.

Reports are accepted as raw bytes or as the hex text that nvtrust writes.
SPDM 1.2 and later sign a prefixed transcript hash instead and are not supported.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.errors import ChainError, MalformedEvidence, SignatureError
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.signatures import verify_signature
from attestnet.evidence.x509chain import (
    check_chain_inputs,
    describe_path,
    subject_text,
    verify_chain,
)

__all__ = [
    "FORMAT",
    "MeasurementBlock",
    "MeasurementReport",
    "looks_like",
    "parse",
    "verify",
]

logger = logging.getLogger(__name__)

FORMAT = "spdm"

SPDM_VERSIONS = (0x10, 0x11)
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
NONCE_SIZE = 32
_SIGNATURE_REQUESTED = 0x01  # GET_MEASUREMENTS param1 bit 0
_MEASUREMENT_SPEC_DMTF = 0x01  # MeasurementSpecification bit 0
_RAW_BITSTREAM = 0x80  # DMTFSpecMeasurementValueType bit 7

# DMTFSpecMeasurementValueType bits 0-6 (DSP0274 1.1, table "DMTF measurement
# specification format").
DMTF_VALUE_TYPES = {
    0: "immutable ROM",
    1: "mutable firmware",
    2: "hardware configuration",
    3: "firmware configuration",
    4: "measurement manifest",
}

# NVIDIA opaque data field types (nvtrust local GPU verifier) that this module names.
_OPAQUE_NAMES = {3: "driver_version", 6: "vbios_version", 20: "fwid"}

# ECDSA r||s signature size and hash by curve (DSP0274: TPM_ALG_ECDSA_ECC_NIST_P256/384/521).
_CURVE_SCHEMES: dict[str, tuple[int, type[hashes.HashAlgorithm]]] = {
    "secp256r1": (64, hashes.SHA256),
    "secp384r1": (96, hashes.SHA384),
    "secp521r1": (132, hashes.SHA512),
}


@dataclass(frozen=True)
class MeasurementBlock:
    """One measurement block with a DMTF-format measurement."""

    index: int
    value_type: int  # DMTFSpecMeasurementValueType bits 0-6
    raw_bitstream: bool  # bit 7: the value is the measured data itself, not a digest
    value: bytes


@dataclass(frozen=True)
class MeasurementReport:
    """A parsed GET_MEASUREMENTS request and MEASUREMENTS response."""

    version: int
    request_attributes: int
    measurement_operation: int
    requester_nonce: bytes
    slot_id: int
    blocks: tuple[MeasurementBlock, ...]
    responder_nonce: bytes
    opaque_data: bytes
    signature: bytes
    signed_data: bytes  # request || response up to the signature


def _malformed(detail: str) -> MalformedEvidence:
    return MalformedEvidence(FORMAT, detail)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise _malformed(
                f"truncated at offset {self.offset}: {what} needs {size} bytes, "
                f"{len(self.data) - self.offset} left"
            )
        value = self.data[self.offset : end]
        self.offset = end
        return value

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "little")


def _decode(data: bytes) -> bytes:
    """Return raw report bytes, decoding the hex text form when given."""
    text = bytes(data).strip()
    if text and all(chr(b) in string.hexdigits for b in text):
        if len(text) % 2:
            raise _malformed("hex text has an odd number of digits")
        return bytes.fromhex(text.decode("ascii"))
    return bytes(data)


def _parse_blocks(record: bytes, count: int) -> tuple[MeasurementBlock, ...]:
    reader = _Reader(record)
    blocks: list[MeasurementBlock] = []
    while reader.offset < len(record):
        index = reader.uint(1, "measurement block index")
        spec = reader.uint(1, "measurement specification")
        size = reader.uint(2, "measurement size")
        measurement = _Reader(reader.take(size, f"measurement {index}"))
        if spec != _MEASUREMENT_SPEC_DMTF:
            raise _malformed(f"measurement {index} uses specification {spec:#x}, not DMTF")
        value_type = measurement.uint(1, f"measurement {index} value type")
        value_size = measurement.uint(2, f"measurement {index} value size")
        value = measurement.take(value_size, f"measurement {index} value")
        if measurement.offset != size:
            raise _malformed(f"measurement {index}: {size - measurement.offset} extra bytes")
        blocks.append(
            MeasurementBlock(index, value_type & 0x7F, bool(value_type & _RAW_BITSTREAM), value)
        )
    if len(blocks) != count:
        raise _malformed(f"NumberOfBlocks is {count} but the record contains {len(blocks)} blocks")
    indices = [b.index for b in blocks]
    if len(set(indices)) != len(indices):
        raise _malformed("measurement record repeats a block index")
    return tuple(blocks)


def parse(data: bytes) -> MeasurementReport:
    """Parse request || response (raw or hex text). Raises MalformedEvidence."""
    raw = _decode(data)
    reader = _Reader(raw)
    version = reader.uint(1, "request SPDMVersion")
    if version not in SPDM_VERSIONS:
        raise _malformed(f"SPDM version {version >> 4}.{version & 0xF} is not supported (1.0, 1.1)")
    if reader.uint(1, "request code") != GET_MEASUREMENTS:
        raise _malformed("the report does not start with a GET_MEASUREMENTS request")
    attributes = reader.uint(1, "request param1")
    operation = reader.uint(1, "request param2")
    if not attributes & _SIGNATURE_REQUESTED:
        raise _malformed("the GET_MEASUREMENTS request did not ask for a signature")
    requester_nonce = reader.take(NONCE_SIZE, "requester nonce")
    slot_id = reader.uint(1, "SlotIDParam") if version >= 0x11 else 0

    if reader.uint(1, "response SPDMVersion") != version:
        raise _malformed("request and response SPDM versions differ")
    if reader.uint(1, "response code") != MEASUREMENTS:
        raise _malformed("the request is not followed by a MEASUREMENTS response")
    reader.take(2, "response param1 and param2")
    count = reader.uint(1, "NumberOfBlocks")
    record_length = reader.uint(3, "MeasurementRecordLength")
    blocks = _parse_blocks(reader.take(record_length, "measurement record"), count)
    responder_nonce = reader.take(NONCE_SIZE, "responder nonce")
    opaque_length = reader.uint(2, "OpaqueLength")
    opaque_data = reader.take(opaque_length, "opaque data")
    signed_data = raw[: reader.offset]
    signature = raw[reader.offset :]
    if not signature:
        raise _malformed("the response has no signature")
    if len(signature) not in {size for size, _ in _CURVE_SCHEMES.values()}:
        raise _malformed(f"signature of {len(signature)} bytes is not an ECDSA r||s size")
    return MeasurementReport(
        version=version,
        request_attributes=attributes,
        measurement_operation=operation,
        requester_nonce=requester_nonce,
        slot_id=slot_id,
        blocks=blocks,
        responder_nonce=responder_nonce,
        opaque_data=opaque_data,
        signature=signature,
        signed_data=signed_data,
    )


def looks_like(data: bytes) -> bool:
    """Sniff GET_MEASUREMENTS (version 1.0/1.1, code 0xE0) in raw bytes or hex text."""
    head = bytes(data[:8]).strip()
    if len(head) >= 4 and all(chr(b) in string.hexdigits for b in head[:4]):
        try:
            head = bytes.fromhex(head[:4].decode("ascii"))
        except ValueError:
            return False
    return len(head) >= 2 and head[0] in SPDM_VERSIONS and head[1] == GET_MEASUREMENTS


def _opaque_fields(opaque: bytes) -> dict[str, Any] | None:
    """Split NVIDIA opaque data into type-length-value fields, or None if it is not TLV."""
    fields: dict[str, Any] = {}
    offset = 0
    while offset < len(opaque):
        if offset + 4 > len(opaque):
            return None
        kind = int.from_bytes(opaque[offset : offset + 2], "little")
        size = int.from_bytes(opaque[offset + 2 : offset + 4], "little")
        value = opaque[offset + 4 : offset + 4 + size]
        if len(value) != size:
            return None
        offset += 4 + size
        name = _OPAQUE_NAMES.get(kind, str(kind))
        if kind == 3:
            fields[name] = value.rstrip(b"\x00").decode("ascii", "replace")
        else:
            fields[name] = value.hex()
    return fields


def _leaf_and_pool(
    collateral: Collateral | None,
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Pick the leaf from the chain in collateral: a certificate that issued no other.

    End-entity certificates (no CA flag) are preferred, so a bundle with a missing link
    still picks the device leaf and then fails on the missing link.
    """
    certificates = list(collateral.certificates) if collateral else []
    if not certificates:
        raise ChainError(
            "device certificate chain",
            "no device certificate chain given; pass the GPU's PEM chain as collateral",
            claim="collateral.certificates",
            expected="leaf, intermediates",
            actual="none",
        )
    issuers = {c.issuer for c in certificates if c.issuer != c.subject}
    leaves = [c for c in certificates if c.subject not in issuers]
    leaves.sort(key=_is_ca)
    return (leaves[0] if leaves else certificates[0]), certificates


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def verify(
    data: bytes, *, anchors: TrustAnchors, at: datetime, collateral: Collateral | None = None
) -> VerifiedEvidence:
    """Verify an NVIDIA SPDM measurement report with the device chain from `collateral`.

    The chain must lead from its leaf to `anchors` (the NVIDIA Device Identity CA) at
    `at`, and the leaf's key must have signed request || response. Raises
    MalformedEvidence, SignatureError or ChainError. The requester nonce becomes
    `nonce`; checking it against the one sent is the relying party's job.
    """
    report = parse(data)
    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims={})

    # The leaf is chosen by reading names and extensions, so corrupt certificates
    # must raise MalformedEvidence before that.
    check_chain_inputs(anchors, collateral, format=FORMAT)
    leaf, pool = _leaf_and_pool(collateral)
    path = verify_chain(leaf, anchors, at, collateral, intermediates=pool, format=FORMAT)
    evidence.passed("device certificate chain", describe_path(path))

    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError(
            "measurement signature",
            "the device leaf key is not an ECDSA key",
            expected="EC public key",
            actual=type(key).__name__,
        )
    if key.curve.name not in _CURVE_SCHEMES:
        raise SignatureError(
            "measurement signature",
            "the device leaf key's curve is not one SPDM uses",
            expected="P-256, P-384 or P-521",
            actual=key.curve.name,
        )
    expected_size, hash_class = _CURVE_SCHEMES[key.curve.name]
    if expected_size != len(report.signature):
        raise SignatureError(
            "measurement signature",
            "signature length does not match the leaf key's curve",
            claim="signature",
            expected=f"{expected_size} bytes for {key.curve.name}",
            actual=f"{len(report.signature)} bytes",
        )
    verify_signature(
        key,
        report.signature,
        report.signed_data,
        scheme="ecdsa-raw",
        hash_algorithm=hash_class(),
        check="measurement signature",
        what="GET_MEASUREMENTS request and MEASUREMENTS response",
    )
    evidence.passed(
        "measurement signature",
        f"request and response signed by {subject_text(leaf)}",
    )

    _fill(evidence, report, key)
    logger.debug("verified SPDM report with %d measurement blocks", len(report.blocks))
    return evidence


def _fill(
    evidence: VerifiedEvidence, report: MeasurementReport, key: ec.EllipticCurvePublicKey
) -> None:
    claims: dict[str, Any] = {
        "spdm_version": f"{report.version >> 4}.{report.version & 0xF}",
        "measurement_operation": report.measurement_operation,
        "slot_id": report.slot_id,
        "requester_nonce": report.requester_nonce.hex(),
        "responder_nonce": report.responder_nonce.hex(),
        "measurements": {
            str(block.index): {
                "type": DMTF_VALUE_TYPES.get(block.value_type, str(block.value_type)),
                "raw_bitstream": block.raw_bitstream,
                "value": block.value.hex(),
            }
            for block in report.blocks
        },
        "opaque_data": report.opaque_data.hex(),
    }
    opaque = _opaque_fields(report.opaque_data)
    if opaque is not None:
        claims["opaque"] = opaque
    evidence.claims = claims
    evidence.measurements = {f"spdm/{block.index}": block.value for block in report.blocks}
    evidence.nonce = report.requester_nonce
    evidence.signer = key
