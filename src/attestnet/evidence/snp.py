"""AMD SEV-SNP attestation reports (ATTESTATION_REPORT versions 2 and 3).

Layout and bit fields follow the ATTESTATION_REPORT table of AMD's "SEV Secure
Nested Paging Firmware ABI Specification" (document 56860). The VCEK extensions
follow AMD's "VCEK Certificate and KDS Interface Specification" (document 57230).

A report is 1184 bytes. The firmware signs bytes 0x000..0x29F with the VCEK (a
per-chip, per-TCB key) or the VLEK (a key AMD provisions to a cloud provider) using
ECDSA P-384 with SHA-384, and stores r and s as 72-byte little-endian integers.

The chain is VCEK -> ASK -> ARK or VLEK -> ASVK -> ARK, all RSA-PSS with SHA-384.
The ARK is the trust anchor: certificates in `anchors` that are not self-signed
(the ASK that AMD ships in the same PEM file as the ARK) are used as intermediates
only, so a chain must end at a pinned ARK.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestnet.errors import ChainError, MalformedEvidence, SignatureError, VerificationError
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.signatures import verify_signature
from attestnet.evidence.x509chain import (
    check_chain_inputs,
    describe_path,
    load_certificate,
    subject_text,
    verify_chain,
)

__all__ = [
    "FORMAT",
    "REPORT_SIZE",
    "SIGNED_SIZE",
    "AttestationReport",
    "GuestPolicy",
    "PlatformInfo",
    "TcbVersion",
    "check_chip_id",
    "check_tcb_extensions",
    "load_vcek",
    "looks_like",
    "parse",
    "verify",
]

logger = logging.getLogger(__name__)

FORMAT = "sev-snp"
REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = (2, 3)
SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1

# Every field of the report: name -> (offset, size in bytes). Integers are little-endian.
# Offsets 0x188..0x18A are reserved in version 2 and hold the CPUID family, model and
# stepping from version 3 on.
FIELDS: dict[str, tuple[int, int]] = {
    "version": (0x000, 4),
    "guest_svn": (0x004, 4),
    "policy": (0x008, 8),
    "family_id": (0x010, 16),
    "image_id": (0x020, 16),
    "vmpl": (0x030, 4),
    "signature_algo": (0x034, 4),
    "current_tcb": (0x038, 8),
    "platform_info": (0x040, 8),
    "flags": (0x048, 4),
    "report_data": (0x050, 64),
    "measurement": (0x090, 48),
    "host_data": (0x0C0, 32),
    "id_key_digest": (0x0E0, 48),
    "author_key_digest": (0x110, 48),
    "report_id": (0x140, 32),
    "report_id_ma": (0x160, 32),
    "reported_tcb": (0x180, 8),
    "cpuid_fam_id": (0x188, 1),
    "cpuid_mod_id": (0x189, 1),
    "cpuid_step": (0x18A, 1),
    "chip_id": (0x1A0, 64),
    "committed_tcb": (0x1E0, 8),
    "current_build": (0x1E8, 1),
    "current_minor": (0x1E9, 1),
    "current_major": (0x1EA, 1),
    "committed_build": (0x1EC, 1),
    "committed_minor": (0x1ED, 1),
    "committed_major": (0x1EE, 1),
    "launch_tcb": (0x1F0, 8),
    "signature_r": (0x2A0, 72),
    "signature_s": (0x2E8, 72),
}
# The rest of the 512-byte signature field after r and s; it must be zero.
_SIGNATURE_RESERVED = (0x330, REPORT_SIZE - 0x330)
# A P-384 scalar is 48 bytes, so bytes 48..71 of r and of s must be zero.
_P384_SCALAR_SIZE = 48

# CPUID family of Turin (family 1Ah), whose TCB_VERSION layout adds an FMC field.
_FAMILY_TURIN = 0x1A

# VCEK and VLEK certificate extensions (AMD document 57230).
_OID_BL_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.1")
_OID_TEE_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.2")
_OID_SNP_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.3")
_OID_UCODE_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.8")
_OID_FMC_SPL = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.9")
_OID_HWID = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4")
_OID_CSP_ID = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.5")

_TCB_EXTENSIONS: dict[str, x509.ObjectIdentifier] = {
    "bootloader": _OID_BL_SPL,
    "tee": _OID_TEE_SPL,
    "snp": _OID_SNP_SPL,
    "microcode": _OID_UCODE_SPL,
    "fmc": _OID_FMC_SPL,
}

SigningKey = Literal["vcek", "vlek", "none"]
# SIGNING_KEY, bits 4:2 of the flags word at 0x048.
_SIGNING_KEYS: dict[int, SigningKey] = {0: "vcek", 1: "vlek", 7: "none"}


@dataclass(frozen=True)
class TcbVersion:
    """A TCB_VERSION: the security patch level of each firmware component.

    Milan and Genoa lay it out as bootloader, TEE, four reserved bytes, SNP, microcode.
    Turin (family 1Ah) uses FMC, bootloader, TEE, SNP, three reserved bytes, microcode,
    so `fmc` is set only for Turin.
    """

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None
    raw: bytes

    @classmethod
    def decode(cls, raw: bytes, turin: bool) -> TcbVersion:
        if turin:
            # NOTE: this layout matches public parsers, but no real Turin report was tested.
            return cls(raw[1], raw[2], raw[3], raw[7], raw[0], raw)
        return cls(raw[0], raw[1], raw[6], raw[7], None, raw)

    def components(self) -> dict[str, int]:
        values = {
            "bootloader": self.bootloader,
            "tee": self.tee,
            "snp": self.snp,
            "microcode": self.microcode,
        }
        if self.fmc is not None:
            values["fmc"] = self.fmc
        return values


@dataclass(frozen=True)
class GuestPolicy:
    """The guest policy that the hypervisor set at launch (64 bits at 0x008)."""

    raw: int
    abi_minor: int
    abi_major: int
    smt_allowed: bool
    migrate_ma: bool
    debug: bool
    single_socket: bool
    cxl_allowed: bool
    mem_aes_256_xts: bool
    rapl_disabled: bool
    ciphertext_hiding: bool
    page_swap_disabled: bool

    @classmethod
    def decode(cls, raw: int) -> GuestPolicy:
        def bit(n: int) -> bool:
            return bool(raw >> n & 1)

        return cls(
            raw=raw,
            abi_minor=raw & 0xFF,
            abi_major=raw >> 8 & 0xFF,
            smt_allowed=bit(16),
            migrate_ma=bit(18),
            debug=bit(19),
            single_socket=bit(20),
            cxl_allowed=bit(21),
            mem_aes_256_xts=bit(22),
            rapl_disabled=bit(23),
            ciphertext_hiding=bit(24),
            page_swap_disabled=bit(25),
        )


@dataclass(frozen=True)
class PlatformInfo:
    """Platform state when the report was made (64 bits at 0x040)."""

    raw: int
    smt_enabled: bool
    tsme_enabled: bool
    ecc_enabled: bool
    rapl_disabled: bool
    ciphertext_hiding_enabled: bool
    alias_check_complete: bool

    @classmethod
    def decode(cls, raw: int) -> PlatformInfo:
        return cls(
            raw=raw,
            smt_enabled=bool(raw & 1),
            tsme_enabled=bool(raw >> 1 & 1),
            ecc_enabled=bool(raw >> 2 & 1),
            rapl_disabled=bool(raw >> 3 & 1),
            ciphertext_hiding_enabled=bool(raw >> 4 & 1),
            alias_check_complete=bool(raw >> 5 & 1),
        )


@dataclass(frozen=True)
class AttestationReport:
    """A parsed ATTESTATION_REPORT. `signed_bytes` are the bytes the signature covers."""

    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: TcbVersion
    platform_info: PlatformInfo
    author_key_en: bool
    mask_chip_id: bool
    signing_key: SigningKey
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: TcbVersion
    cpuid_fam_id: int | None
    cpuid_mod_id: int | None
    cpuid_step: int | None
    chip_id: bytes
    committed_tcb: TcbVersion
    current_version: tuple[int, int, int]
    committed_version: tuple[int, int, int]
    launch_tcb: TcbVersion
    signature_r: int
    signature_s: int
    signed_bytes: bytes

    def signature_raw(self) -> bytes:
        """Return the signature as big-endian r||s (48 bytes each) for `ecdsa-raw`."""
        return self.signature_r.to_bytes(48, "big") + self.signature_s.to_bytes(48, "big")


def _field(data: bytes, name: str) -> bytes:
    offset, size = FIELDS[name]
    return data[offset : offset + size]


def _uint(data: bytes, name: str) -> int:
    return int.from_bytes(_field(data, name), "little")


def _check_length(data: bytes) -> None:
    if len(data) != REPORT_SIZE:
        raise MalformedEvidence(
            FORMAT, f"an attestation report is {REPORT_SIZE} bytes, got {len(data)}"
        )


def _split_signature(data: bytes) -> tuple[bytes, bytes]:
    """Return (signed bytes, big-endian r||s); the unused signature bytes must be zero."""
    _check_length(data)
    for name in ("signature_r", "signature_s"):
        if any(_field(data, name)[_P384_SCALAR_SIZE:]):
            raise MalformedEvidence(
                FORMAT,
                f"{name} at {FIELDS[name][0]:#x} is larger than a P-384 scalar "
                f"(bytes {_P384_SCALAR_SIZE}..71 must be zero)",
            )
    offset, size = _SIGNATURE_RESERVED
    if any(data[offset : offset + size]):
        raise MalformedEvidence(
            FORMAT, f"reserved bytes {offset:#x}..{REPORT_SIZE - 1:#x} are not zero"
        )
    r = _uint(data, "signature_r")
    s = _uint(data, "signature_s")
    return data[:SIGNED_SIZE], r.to_bytes(48, "big") + s.to_bytes(48, "big")


def looks_like(data: bytes) -> bool:
    """Return True for 1184 bytes with a supported version and the ECDSA P-384 algorithm."""
    return (
        len(data) == REPORT_SIZE
        and _uint(data, "version") in SUPPORTED_VERSIONS
        and _uint(data, "signature_algo") == SIGNATURE_ALGO_ECDSA_P384_SHA384
        and _uint(data, "vmpl") <= 3
    )


def parse(data: bytes) -> AttestationReport:
    """Parse an ATTESTATION_REPORT; raise MalformedEvidence unless it is a valid v2 or v3."""
    signed, _ = _split_signature(data)

    version = _uint(data, "version")
    if version not in SUPPORTED_VERSIONS:
        raise MalformedEvidence(
            FORMAT,
            f"unsupported report version {version}; this parser reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}",
        )
    signature_algo = _uint(data, "signature_algo")
    if signature_algo != SIGNATURE_ALGO_ECDSA_P384_SHA384:
        raise MalformedEvidence(
            FORMAT,
            f"unsupported SIGNATURE_ALGO {signature_algo} at {FIELDS['signature_algo'][0]:#x}; "
            f"expected {SIGNATURE_ALGO_ECDSA_P384_SHA384} (ECDSA P-384 with SHA-384)",
        )
    vmpl = _uint(data, "vmpl")
    if vmpl > 3:
        raise MalformedEvidence(FORMAT, f"VMPL {vmpl} is out of range 0..3")

    flags = _uint(data, "flags")
    signing_key_code = flags >> 2 & 0b111
    signing_key = _SIGNING_KEYS.get(signing_key_code)
    if signing_key is None:
        raise MalformedEvidence(FORMAT, f"unknown SIGNING_KEY value {signing_key_code} in flags")

    cpuid: tuple[int | None, int | None, int | None] = (None, None, None)
    if version >= 3:
        cpuid = (
            _uint(data, "cpuid_fam_id"),
            _uint(data, "cpuid_mod_id"),
            _uint(data, "cpuid_step"),
        )
    turin = cpuid[0] == _FAMILY_TURIN

    def tcb(name: str) -> TcbVersion:
        return TcbVersion.decode(_field(data, name), turin)

    def firmware_version(prefix: str) -> tuple[int, int, int]:
        return (
            _uint(data, f"{prefix}_major"),
            _uint(data, f"{prefix}_minor"),
            _uint(data, f"{prefix}_build"),
        )

    return AttestationReport(
        version=version,
        guest_svn=_uint(data, "guest_svn"),
        policy=GuestPolicy.decode(_uint(data, "policy")),
        family_id=_field(data, "family_id"),
        image_id=_field(data, "image_id"),
        vmpl=vmpl,
        signature_algo=signature_algo,
        current_tcb=tcb("current_tcb"),
        platform_info=PlatformInfo.decode(_uint(data, "platform_info")),
        author_key_en=bool(flags & 1),
        mask_chip_id=bool(flags >> 1 & 1),
        signing_key=signing_key,
        report_data=_field(data, "report_data"),
        measurement=_field(data, "measurement"),
        host_data=_field(data, "host_data"),
        id_key_digest=_field(data, "id_key_digest"),
        author_key_digest=_field(data, "author_key_digest"),
        report_id=_field(data, "report_id"),
        report_id_ma=_field(data, "report_id_ma"),
        reported_tcb=tcb("reported_tcb"),
        cpuid_fam_id=cpuid[0],
        cpuid_mod_id=cpuid[1],
        cpuid_step=cpuid[2],
        chip_id=_field(data, "chip_id"),
        committed_tcb=tcb("committed_tcb"),
        current_version=firmware_version("current"),
        committed_version=firmware_version("committed"),
        launch_tcb=tcb("launch_tcb"),
        signature_r=_uint(data, "signature_r"),
        signature_s=_uint(data, "signature_s"),
        signed_bytes=signed,
    )


def load_vcek(der: bytes) -> x509.Certificate:
    """Load a VCEK or VLEK certificate from DER; raise MalformedEvidence if it is not one.

    AMD's KDS issues VCEKs with serial number 0, which RFC 5280 forbids; the loader
    accepts it without a warning (see `x509chain.tolerated_certificate_warnings`).
    """
    return load_certificate(der, format=FORMAT, what="VCEK")


def _extension_bytes(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        extension = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise MalformedEvidence(
            FORMAT, f"VCEK extension {oid.dotted_string} has an unexpected type"
        )
    return value.value


def _der_small_uint(encoded: bytes, oid: x509.ObjectIdentifier) -> int:
    """Decode a DER INTEGER in 0..255, the form of the VCEK's SPL extensions."""
    if len(encoded) < 3 or encoded[0] != 0x02 or encoded[1] != len(encoded) - 2:
        raise MalformedEvidence(
            FORMAT, f"VCEK extension {oid.dotted_string} is not a DER INTEGER: {encoded.hex()}"
        )
    value = int.from_bytes(encoded[2:], "big", signed=True)
    if not 0 <= value <= 0xFF:
        raise MalformedEvidence(
            FORMAT, f"VCEK extension {oid.dotted_string} value {value} is out of range 0..255"
        )
    return value


def _certificate_kind(cert: x509.Certificate) -> Literal["vcek", "vlek"]:
    if _extension_bytes(cert, _OID_HWID) is not None:
        return "vcek"
    if _extension_bytes(cert, _OID_CSP_ID) is not None:
        return "vlek"
    common_names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if common_names and common_names[0].value == "SEV-VLEK":
        return "vlek"
    return "vcek"


def check_tcb_extensions(report: AttestationReport, cert: x509.Certificate) -> None:
    """Raise VerificationError unless the VCEK's or VLEK's SPL extensions equal REPORTED_TCB.

    AMD derives a VCEK from the chip secret and the TCB, so a VCEK certifies exactly one
    TCB; a report whose REPORTED_TCB differs was signed under another key derivation.
    """
    reported = report.reported_tcb.components()
    for component, value in reported.items():
        oid = _TCB_EXTENSIONS[component]
        encoded = _extension_bytes(cert, oid)
        if encoded is None:
            raise VerificationError(
                "vcek tcb",
                f"certificate has no {component} SPL extension {oid.dotted_string}",
                claim=f"reported_tcb.{component}",
                expected=value,
                actual="absent",
            )
        certified = _der_small_uint(encoded, oid)
        if certified != value:
            raise VerificationError(
                "vcek tcb",
                f"certificate {component} SPL differs from the report's REPORTED_TCB",
                claim=f"reported_tcb.{component}",
                expected=certified,
                actual=value,
            )


def check_chip_id(report: AttestationReport, cert: x509.Certificate) -> None:
    """Raise VerificationError unless the VCEK's hwID extension equals the report's CHIP_ID."""
    encoded = _extension_bytes(cert, _OID_HWID)
    if encoded is None:
        raise VerificationError(
            "vcek chip id",
            f"certificate has no hwID extension {_OID_HWID.dotted_string}",
            claim="chip_id",
            expected=report.chip_id,
            actual="absent",
        )
    # KDS stores the 64 raw bytes as the extension value; accept a DER OCTET STRING too.
    if len(encoded) == 66 and encoded[:2] == b"\x04\x40":
        encoded = encoded[2:]
    if encoded != report.chip_id:
        raise VerificationError(
            "vcek chip id",
            "certificate hwID differs from the report's CHIP_ID",
            claim="chip_id",
            expected=encoded,
            actual=report.chip_id,
        )


def _split_anchors(anchors: TrustAnchors) -> tuple[TrustAnchors, tuple[x509.Certificate, ...]]:
    """Keep self-signed certificates as anchors and return the others as intermediates."""
    roots = tuple(c for c in anchors.certificates if c.subject == c.issuer)
    others = tuple(c for c in anchors.certificates if c.subject != c.issuer)
    return TrustAnchors(roots, anchors.public_keys), others


def _find_signing_certificate(
    signed: bytes, signature: bytes, collateral: Collateral
) -> x509.Certificate:
    """Return the P-384 certificate in `collateral` whose key signed the report."""
    candidates = [
        c for c in collateral.certificates if isinstance(c.public_key(), ec.EllipticCurvePublicKey)
    ]
    if not candidates:
        raise ChainError(
            "report signature",
            "no VCEK or VLEK certificate in the collateral; "
            "fetch the VCEK for this chip and TCB from AMD KDS",
            claim="vcek",
            expected="a P-384 certificate",
            actual="none",
        )
    for cert in candidates[:-1]:
        try:
            _verify_report_signature(signed, signature, cert)
        except SignatureError:
            continue
        return cert
    _verify_report_signature(signed, signature, candidates[-1])
    return candidates[-1]


def _verify_report_signature(signed: bytes, signature: bytes, cert: x509.Certificate) -> None:
    key: PublicKeyTypes = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise SignatureError(
            "report signature",
            "VCEK key is not ECDSA P-384",
            expected="secp384r1",
            actual=getattr(getattr(key, "curve", None), "name", type(key).__name__),
        )
    verify_signature(
        key,
        signature,
        signed,
        scheme="ecdsa-raw",
        hash_algorithm=hashes.SHA384(),
        check="report signature",
        what=f"SEV-SNP report signed by {subject_text(cert)!r}",
    )


def _tcb_claims(tcb: TcbVersion) -> dict[str, Any]:
    return {**tcb.components(), "raw": tcb.raw.hex()}


def _claims(report: AttestationReport) -> dict[str, Any]:
    policy = report.policy
    platform = report.platform_info
    claims: dict[str, Any] = {
        "version": report.version,
        "guest_svn": report.guest_svn,
        "policy": {
            "raw": f"{policy.raw:#x}",
            "abi": f"{policy.abi_major}.{policy.abi_minor}",
            "smt_allowed": policy.smt_allowed,
            "migrate_ma": policy.migrate_ma,
            "debug": policy.debug,
            "single_socket": policy.single_socket,
            "cxl_allowed": policy.cxl_allowed,
            "mem_aes_256_xts": policy.mem_aes_256_xts,
            "rapl_disabled": policy.rapl_disabled,
            "ciphertext_hiding": policy.ciphertext_hiding,
            "page_swap_disabled": policy.page_swap_disabled,
        },
        "family_id": report.family_id.hex(),
        "image_id": report.image_id.hex(),
        "vmpl": report.vmpl,
        "signature_algo": report.signature_algo,
        "current_tcb": _tcb_claims(report.current_tcb),
        "platform_info": {
            "raw": f"{platform.raw:#x}",
            "smt_enabled": platform.smt_enabled,
            "tsme_enabled": platform.tsme_enabled,
            "ecc_enabled": platform.ecc_enabled,
            "rapl_disabled": platform.rapl_disabled,
            "ciphertext_hiding_enabled": platform.ciphertext_hiding_enabled,
            "alias_check_complete": platform.alias_check_complete,
        },
        "author_key_en": report.author_key_en,
        "mask_chip_id": report.mask_chip_id,
        "signing_key": report.signing_key,
        "report_data": report.report_data.hex(),
        "measurement": report.measurement.hex(),
        "host_data": report.host_data.hex(),
        "id_key_digest": report.id_key_digest.hex(),
        "author_key_digest": report.author_key_digest.hex(),
        "report_id": report.report_id.hex(),
        "report_id_ma": report.report_id_ma.hex(),
        "reported_tcb": _tcb_claims(report.reported_tcb),
        "chip_id": report.chip_id.hex(),
        "committed_tcb": _tcb_claims(report.committed_tcb),
        "current_version": "{}.{}.{}".format(*report.current_version),
        "committed_version": "{}.{}.{}".format(*report.committed_version),
        "launch_tcb": _tcb_claims(report.launch_tcb),
    }
    if report.cpuid_fam_id is not None:
        claims["cpuid"] = {
            "family": report.cpuid_fam_id,
            "model": report.cpuid_mod_id,
            "stepping": report.cpuid_step,
        }
    return claims


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify a report against its VCEK or VLEK (in `collateral`) and a pinned ARK.

    The signature is checked before the report's fields are interpreted, so a change
    anywhere in bytes 0x000..0x29F raises SignatureError. Then the certificate chain,
    the signing key type, the VCEK's TCB extensions against REPORTED_TCB and its hwID
    against CHIP_ID (VCEK only) are checked. Raises MalformedEvidence, SignatureError,
    ChainError or VerificationError.
    """
    signed, signature = _split_signature(data)
    check_chain_inputs(anchors, collateral, format=FORMAT)
    signing_cert = _find_signing_certificate(signed, signature, collateral or Collateral())
    report = parse(data)

    evidence = VerifiedEvidence(format=FORMAT, verified_at=at, claims=_claims(report))
    evidence.passed(
        "report signature",
        f"ECDSA P-384 SHA-384 by {subject_text(signing_cert)}",
    )

    roots, intermediates = _split_anchors(anchors)
    path = verify_chain(signing_cert, roots, at, collateral, intermediates, format=FORMAT)
    evidence.passed("certificate chain", describe_path(path))

    kind = _certificate_kind(signing_cert)
    if report.signing_key != kind:
        raise VerificationError(
            "signing key type",
            "the report names another signing key than the certificate that signed it",
            claim="SIGNING_KEY",
            expected=report.signing_key.upper(),
            actual=kind.upper(),
        )
    evidence.passed("signing key type", kind.upper())

    check_tcb_extensions(report, signing_cert)
    evidence.passed("vcek tcb", f"{kind.upper()} SPL extensions equal REPORTED_TCB")

    if kind == "vcek" and not report.mask_chip_id:
        check_chip_id(report, signing_cert)
        evidence.passed("vcek chip id", "VCEK hwID equals CHIP_ID")
    elif report.mask_chip_id:
        logger.debug("report has MASK_CHIP_ID set; CHIP_ID is zero and not compared")

    evidence.measurements = {
        "snp/measurement": report.measurement,
        "snp/host_data": report.host_data,
        "snp/id_key_digest": report.id_key_digest,
        "snp/author_key_digest": report.author_key_digest,
        "snp/family_id": report.family_id,
        "snp/image_id": report.image_id,
    }
    evidence.nonce = report.report_data
    evidence.instance_id = None if report.mask_chip_id else report.chip_id
    evidence.tcb = report.reported_tcb.components()
    evidence.debug = report.policy.debug
    evidence.signer = signing_cert.public_key()
    return evidence
