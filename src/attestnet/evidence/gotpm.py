"""go-tpm-tools `Attestation` evidence: a TPM AK, PCR quotes and the boot event log.

The container is the protobuf message `attest.Attestation` of google/go-tpm-tools
(proto/attest.proto, with `tpm.Quote` and `tpm.PCRs` from proto/tpm.proto):

| field | name | content |
| --- | --- | --- |
| 1 | ak_pub | the AK's TPMT_PUBLIC |
| 2 | quotes | repeated Quote {1 quote: TPMS_ATTEST, 2 raw_sig: TPMT_SIGNATURE, 3 pcrs} |
| 3 | event_log | TCG firmware event log (crypto-agile or SHA-1) |
| 4 | instance_info | GCEInstanceInfo, not signed by anything |
| 5 | canonical_event_log | TCG Canonical Event Log (not parsed here) |
| 6 | ak_cert | the AK certificate, DER |
| 7 | intermediate_certs | repeated DER certificates |
| 8, 9 | tee_attestation | SEV-SNP or TDX evidence (not verified here) |

PCRs is {1 hash: TPM_ALG_ID of the bank, 2 pcrs: map<uint32, bytes>}, where each
map entry is a message {1 key, 2 value}.

`verify` checks that the AK certificate chains to a trust anchor (or that the AK
key itself is an anchor) and that the certificate's key is the AK. It then checks
that the AK signed each quote and that each quote's pcrDigest covers exactly the
supplied PCR values. All quotes must carry the same extraData, which is reported
as the nonce, and the event log must replay to the quoted PCR values.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestnet.errors import (
    ChainError,
    ConfigError,
    MalformedEvidence,
    VerificationError,
)
from attestnet.evidence import tcg_eventlog, tpm
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.protobuf_wire import Message, parse_message
from attestnet.evidence.x509chain import (
    describe_path,
    load_certificate,
    public_key_der,
    verify_chain,
)

__all__ = [
    "FORMAT",
    "Attestation",
    "GceInstanceInfo",
    "PcrBank",
    "Quote",
    "looks_like",
    "parse",
    "verify",
]

FORMAT = "gotpm"

logger = logging.getLogger(__name__)

# Field numbers of attest.Attestation, tpm.Quote, tpm.PCRs and attest.GCEInstanceInfo.
_ATTESTATION_AK_PUB = 1
_ATTESTATION_QUOTES = 2
_ATTESTATION_EVENT_LOG = 3
_ATTESTATION_INSTANCE_INFO = 4
_ATTESTATION_CANONICAL_EVENT_LOG = 5
_ATTESTATION_AK_CERT = 6
_ATTESTATION_INTERMEDIATES = 7
_ATTESTATION_SEV_SNP = 8
_ATTESTATION_TDX = 9
_ATTESTATION_FIELDS = frozenset(range(1, 10))

_QUOTE_QUOTE = 1
_QUOTE_RAW_SIG = 2
_QUOTE_PCRS = 3

_PCRS_HASH = 1
_PCRS_MAP = 2
_MAP_KEY = 1
_MAP_VALUE = 2

_INSTANCE_ZONE = 1
_INSTANCE_PROJECT_ID = 2
_INSTANCE_PROJECT_NUMBER = 3
_INSTANCE_NAME = 4
_INSTANCE_ID = 5

# X.509 extension in Google-issued AK certificates that names the GCE instance
# (the "cloudComputeInstanceIdentifier" of go-tpm-tools' server package).
_GCE_INSTANCE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.21")

_MAX_PCR_INDEX = 255  # a TPMS_PCR_SELECTION bitmap is at most 32 bytes


@dataclass(frozen=True)
class PcrBank:
    """The PCR values supplied with one quote: a bank and index -> value, sorted."""

    hash_alg: int
    values: tuple[tuple[int, bytes], ...]

    @property
    def bank(self) -> str:
        return tpm.hash_name(self.hash_alg)

    def as_dict(self) -> dict[int, bytes]:
        return dict(self.values)


@dataclass(frozen=True)
class Quote:
    """One `tpm.Quote`: the signed TPMS_ATTEST, its signature and the supplied PCRs."""

    attest: tpm.Attest
    signature: tpm.TpmSignature
    pcrs: PcrBank


@dataclass(frozen=True)
class GceInstanceInfo:
    """A GCE instance's identity: from the AK certificate or the unsigned field 4."""

    zone: str
    project_id: str
    project_number: int
    instance_name: str
    instance_id: int

    def to_claims(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "project_id": self.project_id,
            "project_number": self.project_number,
            "instance_name": self.instance_name,
            "instance_id": self.instance_id,
        }


@dataclass(frozen=True)
class Attestation:
    """A parsed go-tpm-tools Attestation; nothing in it is verified yet."""

    ak_public: tpm.TpmPublic
    quotes: tuple[Quote, ...]
    event_log: tcg_eventlog.EventLog | None
    canonical_event_log: bytes
    ak_cert: x509.Certificate | None
    intermediate_certs: tuple[x509.Certificate, ...]
    unsigned_instance_info: GceInstanceInfo | None
    tee_attestation: str | None
    """"sev_snp" or "tdx" when the container carries TEE evidence, which is not verified."""
    unknown_fields: tuple[int, ...]


# --- parsing ---------------------------------------------------------------------------


def _certificate(der: bytes, what: str) -> x509.Certificate:
    # Google's AK and EK CA names are longer than X.520 allows; load_certificate
    # accepts them on purpose.
    return load_certificate(der, format=FORMAT, what=what)


def _map_entry(payload: bytes) -> tuple[int, bytes]:
    """Decode one map<uint32, bytes> entry {1 key, 2 value}.

    Every entry of the PCR map is either "08 kk 12 ll <value>" or, for PCR 0 whose
    key proto3 leaves out, "12 ll <value>", so those two shapes are sliced directly.
    Any other encoding is decoded field by field, with the same result.
    """
    # Key and length must be one-byte varints (below 0x80) for the slices to be right.
    size = len(payload)
    if size >= 4 and payload[0] == 0x08 and payload[1] < 0x80 and payload[2] == 0x12:
        if payload[3] < 0x80 and payload[3] + 4 == size:
            return payload[1], payload[4:]
    elif size >= 2 and payload[0] == 0x12 and payload[1] < 0x80 and payload[1] + 2 == size:
        return 0, payload[2:]
    entry = parse_message(payload, FORMAT)
    return entry.varint(_MAP_KEY), entry.bytes_field(_MAP_VALUE)


def _pcr_bank(message: Message, quote_index: int) -> PcrBank:
    hash_alg = message.varint(_PCRS_HASH)
    if hash_alg == 0 or hash_alg > 0xFFFF:
        raise MalformedEvidence(
            FORMAT, f"quote {quote_index}: PCRs.hash is {hash_alg}, not a TPM_ALG_ID"
        )
    expected_size = tcg_eventlog.HASH_ALGORITHMS.get(hash_alg, ("", "", None))[2]
    values: dict[int, bytes] = {}
    for payload in message.repeated_bytes(_PCRS_MAP):
        index, value = _map_entry(payload)
        if index > _MAX_PCR_INDEX:
            raise MalformedEvidence(FORMAT, f"quote {quote_index}: PCR index {index} is invalid")
        if index in values:
            raise MalformedEvidence(FORMAT, f"quote {quote_index}: PCR {index} appears twice")
        if expected_size is not None and len(value) != expected_size:
            raise MalformedEvidence(
                FORMAT,
                f"quote {quote_index}: PCR {index} value is {len(value)} bytes, "
                f"expected {expected_size} for {tpm.hash_name(hash_alg)}",
            )
        values[index] = value
    return PcrBank(hash_alg, tuple(sorted(values.items())))


def _quote(message: Message, index: int) -> Quote:
    attest_bytes = message.bytes_field(_QUOTE_QUOTE)
    signature_bytes = message.bytes_field(_QUOTE_RAW_SIG)
    pcrs = message.message(_QUOTE_PCRS)
    if not attest_bytes or not signature_bytes or pcrs is None:
        raise MalformedEvidence(FORMAT, f"quote {index} lacks its quote, raw_sig or pcrs field")
    attest = tpm.parse_attest(attest_bytes)
    if attest.type != tpm.TPM_ST_ATTEST_QUOTE:
        raise MalformedEvidence(
            FORMAT, f"quote {index}: TPMS_ATTEST type is {attest.type:#06x}, expected 0x8018"
        )
    return Quote(attest, tpm.parse_signature(signature_bytes), _pcr_bank(pcrs, index))


def _instance_info(message: Message) -> GceInstanceInfo:
    def text(number: int) -> str:
        try:
            return message.bytes_field(number).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEvidence(
                FORMAT, f"GCEInstanceInfo field {number} is not UTF-8"
            ) from None

    return GceInstanceInfo(
        zone=text(_INSTANCE_ZONE),
        project_id=text(_INSTANCE_PROJECT_ID),
        project_number=message.varint(_INSTANCE_PROJECT_NUMBER),
        instance_name=text(_INSTANCE_NAME),
        instance_id=message.varint(_INSTANCE_ID),
    )


def parse(data: bytes) -> Attestation:
    """Parse an Attestation message; raise MalformedEvidence on anything unparseable.

    Every quote must carry a TPMS_ATTEST of type quote, a TPMT_SIGNATURE and its
    PCR values; the event log, if present, must parse completely.
    """
    message = parse_message(bytes(data), FORMAT)

    ak_pub = message.bytes_field(_ATTESTATION_AK_PUB)
    if not ak_pub:
        raise MalformedEvidence(FORMAT, "ak_pub (field 1) is missing")
    ak_public = tpm.parse_public(ak_pub)

    quote_messages = message.repeated_messages(_ATTESTATION_QUOTES)
    if not quote_messages:
        raise MalformedEvidence(FORMAT, "the attestation has no quotes (field 2)")
    quotes = tuple(_quote(q, i) for i, q in enumerate(quote_messages))

    log_bytes = message.bytes_field(_ATTESTATION_EVENT_LOG)
    event_log = tcg_eventlog.parse(log_bytes) if log_bytes else None

    info_message = message.message(_ATTESTATION_INSTANCE_INFO)
    cert_der = message.bytes_field(_ATTESTATION_AK_CERT)
    intermediates = tuple(
        _certificate(der, f"intermediate_certs[{i}]")
        for i, der in enumerate(message.repeated_bytes(_ATTESTATION_INTERMEDIATES))
    )

    tee: str | None = None
    if message.has(_ATTESTATION_SEV_SNP) and message.has(_ATTESTATION_TDX):
        raise MalformedEvidence(FORMAT, "both sev_snp_attestation and tdx_attestation are set")
    if message.has(_ATTESTATION_SEV_SNP):
        message.bytes_field(_ATTESTATION_SEV_SNP)  # checks the wire type and uniqueness
        tee = "sev_snp"
    elif message.has(_ATTESTATION_TDX):
        message.bytes_field(_ATTESTATION_TDX)
        tee = "tdx"

    return Attestation(
        ak_public=ak_public,
        quotes=quotes,
        event_log=event_log,
        canonical_event_log=message.bytes_field(_ATTESTATION_CANONICAL_EVENT_LOG),
        ak_cert=_certificate(cert_der, "ak_cert") if cert_der else None,
        intermediate_certs=intermediates,
        unsigned_instance_info=_instance_info(info_message) if info_message else None,
        tee_attestation=tee,
        unknown_fields=tuple(message.unknown_numbers(_ATTESTATION_FIELDS)),
    )


def looks_like(data: bytes) -> bool:
    """Return True when `data` is a protobuf whose field 1 is a TPMT_PUBLIC and whose
    field 2 contains a TPMS_ATTEST (magic 0xff544347)."""
    if len(data) < 2 or data[0] != 0x0A:  # field 1, wire type LEN
        return False
    try:
        message = parse_message(bytes(data), FORMAT)
        ak_pub = message.bytes_field(_ATTESTATION_AK_PUB)
        quotes = message.repeated_messages(_ATTESTATION_QUOTES)
        if not quotes:
            return False
        attest = quotes[0].bytes_field(_QUOTE_QUOTE)
    except MalformedEvidence:
        return False
    key_type = int.from_bytes(ak_pub[:2], "big")
    return key_type in (tpm.ALG_RSA, tpm.ALG_ECC) and attest[:4] == b"\xffTCG"


# --- GCE instance identity in the AK certificate ---------------------------------------


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    """Split DER content into (tag, value) pairs; definite short and long lengths only."""
    items: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise MalformedEvidence(FORMAT, "truncated DER in the GCE instance extension")
        tag = data[offset]
        length = data[offset + 1]
        offset += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or offset + count > len(data):
                raise MalformedEvidence(FORMAT, "invalid DER length in the GCE instance extension")
            length = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if offset + length > len(data):
            raise MalformedEvidence(FORMAT, "truncated DER in the GCE instance extension")
        items.append((tag, data[offset : offset + length]))
        offset += length
    return items


def _certified_instance(cert: x509.Certificate) -> GceInstanceInfo | None:
    """Decode the GCE instance extension of an AK certificate, if it has one.

    The extension is SEQUENCE { zone UTF8String, projectNumber INTEGER, projectId
    UTF8String, instanceId INTEGER, instanceName UTF8String, [0] security
    properties OPTIONAL }. The security properties are not decoded.
    """
    try:
        extension = cert.extensions.get_extension_for_oid(_GCE_INSTANCE_OID)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    outer = _der_items(raw)
    if len(outer) != 1 or outer[0][0] != 0x30:
        raise MalformedEvidence(FORMAT, "GCE instance extension is not one SEQUENCE")
    fields = _der_items(outer[0][1])
    expected_tags = (0x0C, 0x02, 0x0C, 0x02, 0x0C)
    if len(fields) < 5 or tuple(tag for tag, _ in fields[:5]) != expected_tags:
        raise MalformedEvidence(FORMAT, "GCE instance extension does not have the expected fields")
    try:
        zone, project_id, name = (fields[i][1].decode("utf-8") for i in (0, 2, 4))
    except UnicodeDecodeError:
        raise MalformedEvidence(FORMAT, "GCE instance extension has a non-UTF-8 string") from None
    project_number = int.from_bytes(fields[1][1], "big", signed=True)
    instance_id = int.from_bytes(fields[3][1], "big", signed=True)
    if not 0 <= instance_id < 1 << 64 or not 0 <= project_number < 1 << 64:
        raise MalformedEvidence(FORMAT, "GCE instance extension has an out-of-range number")
    return GceInstanceInfo(zone, project_id, project_number, name, instance_id)


# --- verification ----------------------------------------------------------------------


def _check_ak_trust(
    attestation: Attestation,
    evidence: VerifiedEvidence,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None,
) -> PublicKeyTypes:
    """Check that the AK is certified by a trust anchor, or is an anchor itself."""
    ak_key = attestation.ak_public.public_key()
    ak_der = public_key_der(ak_key)
    cert = attestation.ak_cert

    if cert is None:
        if any(public_key_der(key) == ak_der for key in anchors.public_keys):
            evidence.passed("ak trust", "the AK public key is a configured trust anchor")
            return ak_key
        raise ChainError(
            "ak certificate chain",
            "the attestation has no AK certificate (field 6) and the AK key is not an anchor",
            claim="ak_cert",
            expected="an AK certificate or the AK public key as trust anchor",
            actual="absent",
        )

    path = verify_chain(
        cert, anchors, at, collateral, attestation.intermediate_certs, format=FORMAT
    )
    evidence.passed("ak certificate chain", describe_path(path))

    # load_certificate decoded the key already, so this cannot raise.
    cert_key_der = public_key_der(cert.public_key())
    if cert_key_der != ak_der:
        raise VerificationError(
            "ak certificate key",
            "the AK certificate certifies a different key than ak_pub",
            claim="ak_cert.subjectPublicKeyInfo",
            expected=ak_der,
            actual=cert_key_der,
        )
    evidence.passed("ak certificate key", "the AK certificate's public key equals ak_pub")
    return ak_key


def _check_quote(index: int, quote: Quote, key: PublicKeyTypes, evidence: VerifiedEvidence) -> None:
    bank = quote.pcrs.bank
    tpm.verify_quote_signature(quote.attest.raw, quote.signature, key)
    evidence.passed("quote signature", f"quote {index} ({bank}): {quote.signature.name} by the AK")

    selection = quote.attest.quote.pcr_select
    if len(selection) != 1 or selection[0].hash_alg != quote.pcrs.hash_alg:
        raise VerificationError(
            "pcr selection",
            f"quote {index} must select exactly the bank of its supplied PCRs",
            claim="pcrSelect",
            expected=bank,
            actual=", ".join(s.bank for s in selection) or "no bank",
        )
    selected = sorted(selection[0].pcrs)
    supplied = [pcr for pcr, _ in quote.pcrs.values]
    if selected != supplied:
        # Supplied values outside the selection are not covered by the signature,
        # and missing ones make the digest unverifiable.
        raise VerificationError(
            "pcr selection",
            f"quote {index} ({bank}): the supplied PCRs differ from the quoted selection",
            claim="pcrs",
            expected=selected,
            actual=supplied,
        )
    values = {(quote.pcrs.hash_alg, pcr): value for pcr, value in quote.pcrs.values}
    tpm.check_pcr_digest(quote.attest, values, quote.signature.hash_alg)
    evidence.passed("pcr digest", f"quote {index} ({bank}): pcrDigest covers PCRs {selected}")


# Permanent handles of the hierarchies (TPM 2.0 Part 2, TPM_RH), whose qualified
# name is the handle itself.
_HIERARCHIES = {
    0x40000001: "owner",
    0x4000000B: "endorsement",
    0x4000000C: "platform",
    0x40000007: "null",
}


def _ak_hierarchy(ak: tpm.TpmPublic, quotes: tuple[Quote, ...]) -> str | None:
    """Name the hierarchy in which the AK is a primary key, from the quotes' qualifiedSigner.

    qualifiedSigner is the signing key's qualified name, H(parent's qualified name ||
    name), which can be recomputed here only for a primary key. When it matches, the
    signed quotes bind the whole AK public area (object attributes, scheme) in ak_pub.
    Returns None when no quote matches, for example for an AK below a storage key.
    GCE AKs are primary keys of the endorsement hierarchy.
    """
    name = ak.name()
    signers = {quote.attest.qualified_signer for quote in quotes}
    if len(signers) != 1:
        return None
    (qualified_signer,) = signers
    for handle, hierarchy in _HIERARCHIES.items():
        digest = hashlib.new(tpm.hash_name(ak.name_alg), handle.to_bytes(4, "big") + name)
        if qualified_signer == ak.name_alg.to_bytes(2, "big") + digest.digest():
            return hierarchy
    return None


def _check_nonce(quotes: tuple[Quote, ...], evidence: VerifiedEvidence) -> bytes:
    nonce = quotes[0].attest.extra_data
    for index, quote in enumerate(quotes[1:], start=1):
        if quote.attest.extra_data != nonce:
            raise VerificationError(
                "quote nonce",
                f"quote {index} carries other extraData than quote 0",
                claim="extraData",
                expected=nonce,
                actual=quote.attest.extra_data,
            )
    evidence.passed("quote nonce", f"all {len(quotes)} quotes carry extraData {nonce.hex()}")
    return nonce


def _check_event_log(
    log: tcg_eventlog.EventLog, quotes: tuple[Quote, ...], evidence: VerifiedEvidence
) -> dict[str, Any]:
    """Replay every bank that a quote covers and compare with the quoted PCRs.

    Only PCRs that the log extends are compared. On a GCE Shielded VM running
    Container-Optimized OS 85 the firmware log extends PCRs 0-9 in every bank.
    PCR 10 is extended by the kernel's IMA, which keeps its own log, and PCRs
    11-23 stay at their reset values (zero, all ones for 17-22), so those quoted
    values have no events here to check against.
    """
    replayed: dict[str, list[int]] = {}
    unquoted: dict[str, list[int]] = {}
    for quote in quotes:
        alg = quote.pcrs.hash_alg
        if alg not in log.algorithms:
            continue
        bank = quote.pcrs.bank
        quoted = quote.pcrs.as_dict()
        values = log.replay(alg)
        for pcr, actual in sorted(values.items()):
            expected = quoted.get(pcr)
            if expected is None:
                unquoted.setdefault(bank, []).append(pcr)
                continue
            if expected != actual:
                raise VerificationError(
                    "event log replay",
                    f"replaying the event log does not give the quoted PCR {pcr} ({bank})",
                    claim=f"pcr/{bank}/{pcr}",
                    expected=expected,
                    actual=actual,
                )
        replayed[bank] = sorted(pcr for pcr in values if pcr in quoted)
        evidence.passed("event log replay", f"{bank}: PCRs {replayed[bank]} match the quote")

    if not replayed:
        raise VerificationError(
            "event log replay",
            "no quote covers a bank that the event log records",
            claim="event_log",
            expected=", ".join(q.pcrs.bank for q in quotes),
            actual=log.algorithm_names(),
        )
    summary = log.summary()
    summary["replayed"] = replayed
    if unquoted:
        # NOTE: events for PCRs outside the quote are parsed but unverified.
        summary["unverified_pcrs"] = unquoted
    return summary


def _quote_claims(index: int, quote: Quote) -> dict[str, Any]:
    attest = quote.attest
    return {
        "index": index,
        "bank": quote.pcrs.bank,
        "signature": quote.signature.name,
        "extra_data": attest.extra_data.hex(),
        "pcr_digest": attest.quote.pcr_digest.hex(),
        "pcrs": [pcr for pcr, _ in quote.pcrs.values],
        "clock": attest.clock_info.clock,
        "reset_count": attest.clock_info.reset_count,
        "restart_count": attest.clock_info.restart_count,
        "safe": attest.clock_info.safe,
        "firmware_version": f"{attest.firmware_version:#018x}",
    }


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Parse and verify a go-tpm-tools Attestation at time `at` (timezone-aware).

    Raises MalformedEvidence for unparseable input, ChainError when the AK is not
    certified by `anchors`, SignatureError when a quote signature fails, and
    VerificationError for the other checks (AK certificate key, PCR selection,
    pcr digest, quote nonce, event log replay).
    """
    if at.tzinfo is None:
        raise ConfigError("verification time must be timezone-aware (UTC)")
    attestation = parse(data)
    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims={})

    key = _check_ak_trust(attestation, evidence, anchors, at, collateral)
    for index, quote in enumerate(attestation.quotes):
        _check_quote(index, quote, key, evidence)
    banks = [q.pcrs.hash_alg for q in attestation.quotes]
    if len(set(banks)) != len(banks):
        raise VerificationError(
            "pcr selection",
            "two quotes cover the same PCR bank",
            claim="quotes",
            expected="one quote per bank",
            actual=", ".join(tpm.hash_name(b) for b in banks),
        )
    nonce = _check_nonce(attestation.quotes, evidence)

    claims: dict[str, Any] = {
        "ak": _ak_claims(attestation.ak_public, attestation.quotes),
        "quotes": [_quote_claims(i, q) for i, q in enumerate(attestation.quotes)],
    }
    if attestation.event_log is not None:
        claims["event_log"] = _check_event_log(attestation.event_log, attestation.quotes, evidence)
    if attestation.ak_cert is not None:
        claims["ak_certificate"] = _certificate_claims(attestation.ak_cert)
        certified = _certified_instance(attestation.ak_cert)
        if certified is not None:
            claims["gce_instance"] = certified.to_claims()
            evidence.instance_id = certified.instance_id.to_bytes(8, "big", signed=False)
    _add_unverified_claims(attestation, claims)

    for quote in attestation.quotes:
        bank = quote.pcrs.bank
        for pcr, value in quote.pcrs.values:
            evidence.measurements[f"pcr/{bank}/{pcr}"] = value
    evidence.claims = claims
    evidence.nonce = nonce
    evidence.signer = key
    logger.debug("verified go-tpm-tools attestation with %d quotes", len(attestation.quotes))
    return evidence


def _ak_claims(ak: tpm.TpmPublic, quotes: tuple[Quote, ...]) -> dict[str, Any]:
    """Describe the AK. Its attributes count as verified only when a quote binds them."""
    hierarchy = _ak_hierarchy(ak, quotes)
    claims: dict[str, Any] = {
        "type": "rsa" if ak.type == tpm.ALG_RSA else "ecc",
        "key_bits": ak.key_bits,
        "public_area_verified": hierarchy is not None,
    }
    if hierarchy is None:
        # The signature and certificate cover only the key itself, so the rest of
        # ak_pub (attributes, name) could be altered without any check failing.
        claims["unverified_object_attributes"] = f"{ak.object_attributes:#010x}"
    else:
        claims["primary_in_hierarchy"] = hierarchy
        claims["name"] = ak.name().hex()
        claims["object_attributes"] = f"{ak.object_attributes:#010x}"
    return claims


def _certificate_claims(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": f"{cert.serial_number:#x}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _add_unverified_claims(attestation: Attestation, claims: dict[str, Any]) -> None:
    """Record container parts that no signature covers, marked as unverified."""
    if attestation.unsigned_instance_info is not None:
        claims["unverified_instance_info"] = attestation.unsigned_instance_info.to_claims()
    if attestation.canonical_event_log:
        claims["unverified_canonical_event_log_bytes"] = len(attestation.canonical_event_log)
    if attestation.tee_attestation is not None:
        claims["unverified_tee_attestation"] = attestation.tee_attestation
    if attestation.unknown_fields:
        claims["unknown_fields"] = list(attestation.unknown_fields)
