"""Intel DCAP quotes: TDX quotes v4 and v5, SGX quotes v3 and v4.

Layout (Intel SGX/TDX DCAP Quoting Library API, quote formats v3, v4 and v5):

- header (48 bytes): version, attestation key type (2 = ECDSA-256 with P-256), TEE
  type (0x00000000 SGX, 0x00000081 TDX), QE and PCE SVN (v3 only), QE vendor id,
  user data;
- v5 only: body type (1 SGX report, 2 TD report 1.0, 3 TD report 1.5) and body size;
- body: an SGX report body (384 bytes) or a TD report (584 bytes, 648 for TD 1.5);
- signature data length and signature data: the ECDSA signature over everything
  before the length, the attestation public key (x||y), and certification data. In
  v4 and v5 that is type 6 (QE report certification data), which nests type 5 (PCK
  certificate chain, PEM); a v3 quote has the type 6 content inline.

Verification checks the quote signature by the attestation key, the QE report
signature by the PCK leaf, the binding REPORTDATA[0:32] = SHA-256(attestation key ||
QE auth data), the PCK chain to the pinned Intel SGX Root CA with CRLs, the signed
TCB info and QE identity (see `dcap_collateral`) and the resulting TCB status. It
raises for "Revoked" and for a platform that meets no TCB level; every other status
is returned in `claims["tcb_status"]` for the appraisal policy to judge.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.errors import ChainError, MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence import dcap_collateral as dc
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.signatures import verify_signature
from attestnet.evidence.x509chain import (
    check_chain_inputs,
    crl_issuer,
    describe_path,
    load_pem_certificates,
    subject_text,
    verify_chain,
)

__all__ = [
    "FORMAT",
    "QeCertificationData",
    "Quote",
    "QuoteHeader",
    "SgxReportBody",
    "TdReport",
    "looks_like",
    "parse",
    "verify",
]

logger = logging.getLogger(__name__)

FORMAT = "dcap"

TEE_TYPE_SGX = 0x00000000
TEE_TYPE_TDX = 0x00000081
ATTESTATION_KEY_ECDSA_P256 = 2
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")

BODY_TYPE_SGX = 1
BODY_TYPE_TD10 = 2
BODY_TYPE_TD15 = 3

CERT_DATA_PCK_CHAIN = 5
CERT_DATA_QE_REPORT = 6

HEADER_SIZE = 48
SGX_REPORT_SIZE = 384
TD10_REPORT_SIZE = 584
TD15_REPORT_SIZE = 648
_BODY_SIZES = {
    BODY_TYPE_SGX: SGX_REPORT_SIZE,
    BODY_TYPE_TD10: TD10_REPORT_SIZE,
    BODY_TYPE_TD15: TD15_REPORT_SIZE,
}

# Field offsets and sizes: name -> (offset, size). Reserved ranges are left out.
_HEADER_FIELDS = {
    "version": (0, 2),
    "attestation_key_type": (2, 2),
    "tee_type": (4, 4),
    "qe_svn": (8, 2),
    "pce_svn": (10, 2),
    "qe_vendor_id": (12, 16),
    "user_data": (28, 20),
}
_SGX_REPORT_FIELDS = {
    "cpu_svn": (0, 16),
    "misc_select": (16, 4),
    "isv_ext_prod_id": (32, 16),
    "attributes": (48, 16),
    "mr_enclave": (64, 32),
    "mr_signer": (128, 32),
    "config_id": (192, 64),
    "isv_prod_id": (256, 2),
    "isv_svn": (258, 2),
    "config_svn": (260, 2),
    "isv_family_id": (304, 16),
    "report_data": (320, 64),
}
_TD_REPORT_FIELDS = {
    "tee_tcb_svn": (0, 16),
    "mr_seam": (16, 48),
    "mr_signer_seam": (64, 48),
    "seam_attributes": (112, 8),
    "td_attributes": (120, 8),
    "xfam": (128, 8),
    "mr_td": (136, 48),
    "mr_config_id": (184, 48),
    "mr_owner": (232, 48),
    "mr_owner_config": (280, 48),
    "rtmr0": (328, 48),
    "rtmr1": (376, 48),
    "rtmr2": (424, 48),
    "rtmr3": (472, 48),
    "report_data": (520, 64),
    # TD report 1.5 only:
    "tee_tcb_svn2": (584, 16),
    "mr_servicetd": (600, 48),
}
_SGX_DEBUG_FLAG = 0x02  # ATTRIBUTES.FLAGS bit 1
_TD_DEBUG_FLAG = 0x01  # TD_ATTRIBUTES bit 0 (TUD.DEBUG)


def _malformed(detail: str) -> MalformedEvidence:
    return MalformedEvidence(FORMAT, detail)


def _fields(data: bytes, table: dict[str, tuple[int, int]]) -> dict[str, bytes]:
    return {
        name: data[offset : offset + size]
        for name, (offset, size) in table.items()
        if offset + size <= len(data)
    }


def _u16(value: bytes) -> int:
    return int.from_bytes(value, "little")


@dataclass(frozen=True)
class QuoteHeader:
    version: int
    attestation_key_type: int
    tee_type: int
    qe_svn: int  # v3 only; reserved (0) in v4 and v5
    pce_svn: int  # v3 only; reserved (0) in v4 and v5
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True)
class SgxReportBody:
    """An SGX REPORT body: the enclave's body in SGX quotes, and the QE report."""

    cpu_svn: bytes
    misc_select: bytes
    isv_ext_prod_id: bytes
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    config_id: bytes
    isv_prod_id: int
    isv_svn: int
    config_svn: int
    isv_family_id: bytes
    report_data: bytes
    raw: bytes

    @property
    def debug(self) -> bool:
        return bool(self.attributes[0] & _SGX_DEBUG_FLAG)


@dataclass(frozen=True)
class TdReport:
    """A TD report (TDREPORT body of a TDX quote), version 1.0 or 1.5."""

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None  # TD report 1.5 only
    mr_servicetd: bytes | None  # TD report 1.5 only

    @property
    def debug(self) -> bool:
        return bool(self.td_attributes[0] & _TD_DEBUG_FLAG)


@dataclass(frozen=True)
class QeCertificationData:
    """QE report certification data (type 6) and the PCK chain nested in it."""

    qe_report: SgxReportBody
    qe_report_signature: bytes
    qe_auth_data: bytes
    certification_data_type: int
    certification_data: bytes
    pck_chain: tuple[x509.Certificate, ...]  # type 5 only, leaf first; else empty


@dataclass(frozen=True)
class Quote:
    """A parsed DCAP quote. `signed_data` is the region the attestation key signs."""

    header: QuoteHeader
    body_type: int
    body: SgxReportBody | TdReport
    signed_data: bytes
    signature: bytes
    attestation_key: bytes
    qe: QeCertificationData
    padding: int  # zero bytes after the quote, from fixed-size quote buffers

    @property
    def is_tdx(self) -> bool:
        return isinstance(self.body, TdReport)


class _Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if size < 0 or end > len(self.data):
            raise _malformed(
                f"truncated at offset {self.offset}: {what} needs {size} bytes, "
                f"{len(self.data) - self.offset} left"
            )
        value = self.data[self.offset : end]
        self.offset = end
        return value

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])


def _parse_header(data: bytes) -> QuoteHeader:
    f = _fields(data, _HEADER_FIELDS)
    return QuoteHeader(
        version=_u16(f["version"]),
        attestation_key_type=_u16(f["attestation_key_type"]),
        tee_type=int.from_bytes(f["tee_type"], "little"),
        qe_svn=_u16(f["qe_svn"]),
        pce_svn=_u16(f["pce_svn"]),
        qe_vendor_id=f["qe_vendor_id"],
        user_data=f["user_data"],
    )


def parse_sgx_report(data: bytes) -> SgxReportBody:
    if len(data) != SGX_REPORT_SIZE:
        raise _malformed(f"SGX report body must be {SGX_REPORT_SIZE} bytes, got {len(data)}")
    f = _fields(data, _SGX_REPORT_FIELDS)
    return SgxReportBody(
        cpu_svn=f["cpu_svn"],
        misc_select=f["misc_select"],
        isv_ext_prod_id=f["isv_ext_prod_id"],
        attributes=f["attributes"],
        mr_enclave=f["mr_enclave"],
        mr_signer=f["mr_signer"],
        config_id=f["config_id"],
        isv_prod_id=_u16(f["isv_prod_id"]),
        isv_svn=_u16(f["isv_svn"]),
        config_svn=_u16(f["config_svn"]),
        isv_family_id=f["isv_family_id"],
        report_data=f["report_data"],
        raw=data,
    )


def parse_td_report(data: bytes) -> TdReport:
    if len(data) not in (TD10_REPORT_SIZE, TD15_REPORT_SIZE):
        raise _malformed(
            f"TD report must be {TD10_REPORT_SIZE} or {TD15_REPORT_SIZE} bytes, got {len(data)}"
        )
    f = _fields(data, _TD_REPORT_FIELDS)
    return TdReport(
        tee_tcb_svn=f["tee_tcb_svn"],
        mr_seam=f["mr_seam"],
        mr_signer_seam=f["mr_signer_seam"],
        seam_attributes=f["seam_attributes"],
        td_attributes=f["td_attributes"],
        xfam=f["xfam"],
        mr_td=f["mr_td"],
        mr_config_id=f["mr_config_id"],
        mr_owner=f["mr_owner"],
        mr_owner_config=f["mr_owner_config"],
        rtmrs=(f["rtmr0"], f["rtmr1"], f["rtmr2"], f["rtmr3"]),
        report_data=f["report_data"],
        tee_tcb_svn2=f.get("tee_tcb_svn2"),
        mr_servicetd=f.get("mr_servicetd"),
    )


def _parse_qe_report_data(reader: _Reader) -> QeCertificationData:
    qe_report = parse_sgx_report(reader.take(SGX_REPORT_SIZE, "QE report"))
    qe_report_signature = reader.take(64, "QE report signature")
    auth_size = reader.u16("QE auth data size")
    qe_auth_data = reader.take(auth_size, "QE auth data")
    cert_type = reader.u16("certification data type")
    cert_size = reader.u32("certification data size")
    cert_data = reader.take(cert_size, "certification data")
    chain = _parse_pck_chain(cert_data) if cert_type == CERT_DATA_PCK_CHAIN else ()
    return QeCertificationData(
        qe_report, qe_report_signature, qe_auth_data, cert_type, cert_data, chain
    )


def _parse_pck_chain(pem: bytes) -> tuple[x509.Certificate, ...]:
    """Parse the PEM PCK chain, ignoring the NUL that terminates it in real quotes."""
    return load_pem_certificates(pem.rstrip(b"\x00"), format=FORMAT, what="PCK certificate chain")


def _parse_signature_data(data: bytes, version: int) -> tuple[bytes, bytes, QeCertificationData]:
    reader = _Reader(data)
    signature = reader.take(64, "quote signature")
    attestation_key = reader.take(64, "attestation public key")
    if version == 3:
        qe = _parse_qe_report_data(reader)
    else:
        cert_type = reader.u16("certification data type")
        cert_size = reader.u32("certification data size")
        if cert_type != CERT_DATA_QE_REPORT:
            raise _malformed(
                f"certification data type {cert_type} is not supported; "
                f"v{version} quotes carry type {CERT_DATA_QE_REPORT} (QE report)"
            )
        inner = _Reader(reader.take(cert_size, "QE report certification data"))
        qe = _parse_qe_report_data(inner)
        if inner.offset != len(inner.data):
            raise _malformed(
                f"{len(inner.data) - inner.offset} bytes after the nested certification data"
            )
    if reader.offset != len(data):
        raise _malformed(f"{len(data) - reader.offset} bytes after the certification data")
    return signature, attestation_key, qe


def parse(data: bytes) -> Quote:
    """Parse a DCAP quote (SGX v3/v4, TDX v4/v5). Raises MalformedEvidence.

    Zero bytes after the quote's end are accepted and counted in `padding`, because
    quote buffers from the TDX guest interfaces are fixed-size and zero-filled; any
    other trailing byte is rejected.
    """
    data = bytes(data)
    reader = _Reader(data)
    header = _parse_header(reader.take(HEADER_SIZE, "quote header"))
    if header.version not in (3, 4, 5):
        raise _malformed(f"quote version {header.version} is not supported (3, 4 or 5)")
    if header.attestation_key_type != ATTESTATION_KEY_ECDSA_P256:
        raise _malformed(
            f"attestation key type {header.attestation_key_type} is not supported; "
            f"only {ATTESTATION_KEY_ECDSA_P256} (ECDSA-256 with P-256) is"
        )
    if header.tee_type not in (TEE_TYPE_SGX, TEE_TYPE_TDX):
        raise _malformed(f"TEE type {header.tee_type:#010x} is neither SGX nor TDX")
    if header.version == 3 and header.tee_type != TEE_TYPE_SGX:
        raise _malformed("a version 3 quote must be an SGX quote")

    if header.version == 5:
        body_type = reader.u16("body type")
        body_size = reader.u32("body size")
        if _BODY_SIZES.get(body_type) != body_size:
            raise _malformed(f"body type {body_type} with size {body_size} is not supported")
        if (body_type == BODY_TYPE_SGX) != (header.tee_type == TEE_TYPE_SGX):
            raise _malformed(f"body type {body_type} does not match TEE type {header.tee_type:#x}")
    else:
        body_type = BODY_TYPE_SGX if header.tee_type == TEE_TYPE_SGX else BODY_TYPE_TD10
        body_size = _BODY_SIZES[body_type]
    raw_body = reader.take(body_size, "quote body")
    body = parse_sgx_report(raw_body) if body_type == BODY_TYPE_SGX else parse_td_report(raw_body)
    signed_data = data[: reader.offset]

    signature_size = reader.u32("signature data length")
    signature_data = reader.take(signature_size, "signature data")
    signature, attestation_key, qe = _parse_signature_data(signature_data, header.version)

    rest = data[reader.offset :]
    if rest.strip(b"\x00"):
        raise _malformed(f"{len(rest)} bytes after the quote, and not all zero")
    return Quote(header, body_type, body, signed_data, signature, attestation_key, qe, len(rest))


def looks_like(data: bytes) -> bool:
    """Sniff a DCAP quote from its header: version, key type, TEE type, sizes."""
    if len(data) < HEADER_SIZE + SGX_REPORT_SIZE + 4:
        return False
    version, key_type, tee_type = struct.unpack_from("<HHI", data, 0)
    return (
        version in (3, 4, 5)
        and key_type == ATTESTATION_KEY_ECDSA_P256
        and tee_type in (TEE_TYPE_SGX, TEE_TYPE_TDX)
    )


# --- Verification -------------------------------------------------------------------------


def _attestation_public_key(raw: bytes) -> ec.EllipticCurvePublicKey:
    x = int.from_bytes(raw[:32], "big")
    y = int.from_bytes(raw[32:], "big")
    try:
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError:
        raise SignatureError(
            "quote signature",
            "the attestation public key is not a point on P-256",
            claim="attestation_key",
            actual=raw,
        ) from None


def _check_revocation_coverage(
    path: Sequence[x509.Certificate],
    anchors: TrustAnchors,
    crls: Sequence[x509.CertificateRevocationList],
) -> None:
    """Fail closed: every non-anchor certificate of the PCK path needs its issuer's CRL."""
    issuers = [crl_issuer(crl) for crl in crls]
    for cert in path:
        if cert in anchors.certificates:
            continue
        if cert.issuer not in issuers:
            raise ChainError(
                "pck certificate revocation",
                "collateral has no CRL from the issuer of a PCK chain certificate",
                claim="crl issuer",
                expected=cert.issuer.rfc4514_string(),
                actual=sorted({name.rfc4514_string() for name in issuers}) or "no CRLs",
            )


def _verify_document(
    document: dc.SignedDocument,
    kind: str,
    anchors: TrustAnchors,
    at: datetime,
    collateral: dc.DcapCollateral,
    evidence: VerifiedEvidence,
) -> None:
    """Check a TCB info or QE identity: signer chain, signature, issueDate..nextUpdate."""
    candidates = [c for c in document.issuer_chain or collateral.certificates if not _is_ca(c)]
    if not candidates:
        raise ChainError(
            f"{kind} signature",
            f"no signing certificate for the {kind} in the collateral",
            claim="issuer chain",
            expected="Intel SGX TCB Signing certificate",
            actual="none",
        )
    signer = candidates[0]
    verify_chain(
        signer,
        anchors,
        at,
        Collateral(crls=collateral.crls),
        intermediates=document.issuer_chain or collateral.certificates,
        format=FORMAT,
    )
    key = signer.public_key()
    verify_signature(
        key,
        document.signature,
        document.signed_text,
        scheme="ecdsa-raw",
        hash_algorithm=hashes.SHA256(),
        check=f"{kind} signature",
        what=f"{kind} ({document.source})",
    )
    issue = dc.parse_time(_text(document.body, "issueDate", kind), kind)
    next_update = dc.parse_time(_text(document.body, "nextUpdate", kind), kind)
    if not issue <= at <= next_update:
        raise VerificationError(
            "collateral validity",
            f"the {kind} is not current at the verification time",
            claim="issueDate..nextUpdate",
            expected=f"contains {at.isoformat()}",
            actual=f"{issue.isoformat()}..{next_update.isoformat()}",
        )
    evidence.passed(
        f"{kind} signature",
        f"{kind} signed by {subject_text(signer)}, "
        f"current {issue.isoformat()}..{next_update.isoformat()}",
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _text(body: dict[str, Any], key: str, kind: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise VerificationError("collateral", f"{kind}: field {key!r} is missing or not a string")
    return value


def _select_tcb_info(
    collateral: dc.DcapCollateral, pck: dc.PckExtensions, tee: str
) -> dc.SignedDocument:
    """Pick the TCB info for this FMSPC and TEE; the highest evaluation number wins."""
    fmspc = pck.fmspc.hex().upper()
    matching = [
        d
        for d in collateral.tcb_infos
        if str(d.body.get("fmspc", "")).upper() == fmspc and d.body.get("id", "SGX") == tee
    ]
    if not matching:
        raise VerificationError(
            "tcb info",
            "collateral has no TCB info for this platform",
            claim="fmspc/id",
            expected=f"{fmspc}/{tee}",
            actual=[
                f"{d.body.get('fmspc')}/{d.body.get('id', 'SGX')}" for d in collateral.tcb_infos
            ]
            or "no TCB info",
        )
    return max(matching, key=lambda d: _evaluation_number(d.body))


def _evaluation_number(body: dict[str, Any]) -> int:
    value = body.get("tcbEvaluationDataNumber", 0)
    return value if isinstance(value, int) else 0


def _select_qe_identity(collateral: dc.DcapCollateral, tee: str) -> dc.SignedDocument:
    expected_id = "TD_QE" if tee == "TDX" else "QE"
    matching = [d for d in collateral.qe_identities if d.body.get("id", "QE") == expected_id]
    if not matching:
        raise VerificationError(
            "qe identity",
            "collateral has no QE identity for this quote",
            claim="enclaveIdentity.id",
            expected=expected_id,
            actual=[d.body.get("id") for d in collateral.qe_identities] or "no QE identity",
        )
    return max(matching, key=lambda d: _evaluation_number(d.body))


def verify(
    data: bytes, *, anchors: TrustAnchors, at: datetime, collateral: Collateral | None = None
) -> VerifiedEvidence:
    """Verify a DCAP quote with its collateral against the Intel SGX Root CA at `at`.

    `anchors` should hold only the Intel SGX Root CA; the root the quote embeds is
    never trusted by itself. `collateral` must carry the TCB info, QE identity and
    CRLs (see `dcap_collateral`). Raises MalformedEvidence, SignatureError, ChainError
    or VerificationError.
    """
    quote = parse(data)
    tee = "TDX" if quote.is_tdx else "SGX"
    evidence = VerifiedEvidence(format=tee.lower(), verified_at=at, claims={})
    check_chain_inputs(anchors, collateral, format=FORMAT)
    gathered = dc.gather_collateral(
        collateral.documents if collateral else (),
        collateral.certificates if collateral else (),
        collateral.crls if collateral else (),
    )

    attestation_key = _attestation_public_key(quote.attestation_key)
    verify_signature(
        attestation_key,
        quote.signature,
        quote.signed_data,
        scheme="ecdsa-raw",
        hash_algorithm=hashes.SHA256(),
        check="quote signature",
        what="quote header and body",
    )
    evidence.passed("quote signature", "header and body signed by the attestation key")

    chain = quote.qe.pck_chain
    if quote.qe.certification_data_type != CERT_DATA_PCK_CHAIN:
        raise ChainError(
            "pck certificate chain",
            "the quote carries no PCK certificate chain; only certification data "
            "type 5 (PEM chain) is supported",
            claim="certification_data_type",
            expected=CERT_DATA_PCK_CHAIN,
            actual=quote.qe.certification_data_type,
        )
    if not chain:
        raise ChainError("pck certificate chain", "the PCK certificate chain is empty")
    pck_leaf = chain[0]
    path = verify_chain(
        pck_leaf,
        anchors,
        at,
        Collateral(crls=gathered.crls),
        intermediates=chain[1:],
        format=FORMAT,
    )
    _check_revocation_coverage(path, anchors, gathered.crls)
    evidence.passed("pck certificate chain", describe_path(path) + ", none revoked")

    verify_signature(
        pck_leaf.public_key(),
        quote.qe.qe_report_signature,
        quote.qe.qe_report.raw,
        scheme="ecdsa-raw",
        hash_algorithm=hashes.SHA256(),
        check="qe report signature",
        what="QE report",
    )
    evidence.passed("qe report signature", "QE report signed by the PCK leaf")

    expected_binding = hashlib.sha256(quote.attestation_key + quote.qe.qe_auth_data).digest()
    if quote.qe.qe_report.report_data != expected_binding + bytes(32):
        raise SignatureError(
            "qe report data",
            "QE REPORTDATA is not SHA-256(attestation key || QE auth data) || 32 zero bytes",
            claim="qe_report.report_data",
            expected=expected_binding + bytes(32),
            actual=quote.qe.qe_report.report_data,
        )
    evidence.passed("qe report data", "QE report binds the attestation key")

    pck = dc.parse_pck_extensions(pck_leaf)
    tcb_info_doc = _select_tcb_info(gathered, pck, tee)
    _verify_document(tcb_info_doc, "tcb info", anchors, at, gathered, evidence)
    qe_identity_doc = _select_qe_identity(gathered, tee)
    _verify_document(qe_identity_doc, "qe identity", anchors, at, gathered, evidence)

    pce_id = _text(tcb_info_doc.body, "pceId", "tcb info").upper()
    if pce_id != pck.pce_id.hex().upper():
        raise VerificationError(
            "tcb info",
            "TCB info is for another PCE",
            claim="pceId",
            expected=pce_id,
            actual=pck.pce_id.hex().upper(),
        )

    status = _appraise_tcb(quote, pck, tcb_info_doc.body, qe_identity_doc.body, evidence)
    _fill(evidence, quote, pck, status)
    evidence.signer = attestation_key
    logger.debug("verified %s quote v%d: TCB %s", tee, quote.header.version, status["tcb_status"])
    return evidence


def _appraise_tcb(
    quote: Quote,
    pck: dc.PckExtensions,
    tcb_info: dict[str, Any],
    qe_identity: dict[str, Any],
    evidence: VerifiedEvidence,
) -> dict[str, Any]:
    body = quote.body
    tee_tcb_svn = body.tee_tcb_svn if isinstance(body, TdReport) else None
    platform = dc.platform_tcb_match(tcb_info, pck, tee_tcb_svn)
    status = platform.status
    advisories = list(platform.advisory_ids)
    result: dict[str, Any] = {"platform_tcb_status": platform.status, "tcb_date": platform.tcb_date}

    if isinstance(body, TdReport):
        module = dc.tdx_module_match(
            tcb_info,
            mr_signer_seam=body.mr_signer_seam,
            seam_attributes=body.seam_attributes,
            tee_tcb_svn=body.tee_tcb_svn,
        )
        status = dc.converge_status(status, module.status)
        advisories += module.advisory_ids
        result["tdx_module_tcb_status"] = module.status

    qe_report = quote.qe.qe_report
    qe = dc.qe_identity_match(
        qe_identity,
        mr_signer=qe_report.mr_signer,
        isv_prod_id=qe_report.isv_prod_id,
        isv_svn=qe_report.isv_svn,
        misc_select=qe_report.misc_select,
        attributes=qe_report.attributes,
    )
    evidence.passed("qe identity", f"QE matches the QE identity, TCB status {qe.status}")
    status = dc.converge_status(status, qe.status)
    advisories += qe.advisory_ids
    result["qe_tcb_status"] = qe.status

    if status == "Revoked":
        raise VerificationError(
            "tcb status",
            "the platform, TDX module or QE TCB is revoked",
            claim="tcbStatus",
            expected="not Revoked",
            actual=result,
        )
    result["tcb_status"] = status
    result["advisory_ids"] = sorted(set(advisories))
    evidence.passed("tcb status", f"TCB status {status}, advisories {result['advisory_ids']}")
    return result


def _hex_fields(obj: Any, names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = value.hex() if isinstance(value, bytes) else value
    return out


def _fill(
    evidence: VerifiedEvidence, quote: Quote, pck: dc.PckExtensions, status: dict[str, Any]
) -> None:
    header = quote.header
    claims: dict[str, Any] = {
        "quote_version": header.version,
        "tee_type": "tdx" if quote.is_tdx else "sgx",
        "body_type": quote.body_type,
        "attestation_key_type": header.attestation_key_type,
        "qe_vendor_id": header.qe_vendor_id.hex(),
        "user_data": header.user_data.hex(),
        "attestation_key": quote.attestation_key.hex(),
        "qe_report": _hex_fields(
            quote.qe.qe_report, ("mr_enclave", "mr_signer", "isv_prod_id", "isv_svn")
        ),
        "pck": {
            "fmspc": pck.fmspc.hex(),
            "pce_id": pck.pce_id.hex(),
            "ppid": pck.ppid.hex(),
            "sgx_type": pck.sgx_type,
            "cpu_svn": pck.cpu_svn.hex(),
            "pce_svn": pck.pce_svn,
            "tcb_components": list(pck.tcb_components),
        },
        **status,
    }
    if header.version == 3:
        claims["qe_svn"] = header.qe_svn
        claims["pce_svn"] = header.pce_svn
    if quote.padding:
        claims["padding"] = quote.padding

    tcb: dict[str, int] = {f"pck/comp{i:02d}": svn for i, svn in enumerate(pck.tcb_components, 1)}
    tcb["pck/pcesvn"] = pck.pce_svn
    tcb["qe/isvsvn"] = quote.qe.qe_report.isv_svn

    body = quote.body
    if isinstance(body, TdReport):
        names = [n for n in _TD_REPORT_FIELDS if not n.startswith("rtmr")]
        report = {n: getattr(body, n).hex() for n in names if getattr(body, n) is not None}
        report.update({f"rtmr{i}": value.hex() for i, value in enumerate(body.rtmrs)})
        claims["td_report"] = report
        measurements = {
            "tdx/mrtd": body.mr_td,
            "tdx/mrseam": body.mr_seam,
            "tdx/mrsignerseam": body.mr_signer_seam,
            "tdx/mrconfigid": body.mr_config_id,
            "tdx/mrowner": body.mr_owner,
            "tdx/mrownerconfig": body.mr_owner_config,
            "tdx/xfam": body.xfam,
            "tdx/td_attributes": body.td_attributes,
        }
        measurements.update({f"tdx/rtmr{i}": value for i, value in enumerate(body.rtmrs)})
        if body.mr_servicetd is not None:
            measurements["tdx/mrservicetd"] = body.mr_servicetd
        tcb.update({f"tdx/tee_tcb_svn/{i}": svn for i, svn in enumerate(body.tee_tcb_svn)})
        if body.tee_tcb_svn2 is not None:
            tcb.update({f"tdx/tee_tcb_svn2/{i}": svn for i, svn in enumerate(body.tee_tcb_svn2)})
    else:
        claims["sgx_report"] = _hex_fields(body, [n for n in _SGX_REPORT_FIELDS])
        measurements = {
            "sgx/mrenclave": body.mr_enclave,
            "sgx/mrsigner": body.mr_signer,
            "sgx/configid": body.config_id,
            "sgx/attributes": body.attributes,
            "sgx/isvprodid": body.isv_prod_id.to_bytes(2, "little"),
        }
        tcb["sgx/isvsvn"] = body.isv_svn
        tcb["sgx/configsvn"] = body.config_svn

    evidence.claims = claims
    evidence.measurements = measurements
    evidence.nonce = body.report_data
    # The PPID identifies the platform (CPU package), the closest DCAP has to a chip id.
    evidence.instance_id = pck.ppid
    evidence.tcb = tcb
    evidence.debug = body.debug
