"""Certificate loading and path validation, with corrupt certificates in every role.

cryptography decodes names, extensions, keys and algorithms lazily, so a certificate
that loads can still raise ValueError, UnsupportedAlgorithm or DuplicateExtension
when a field is first read. These tests build such certificates by patching the DER
of a freshly generated one, and check that only MalformedEvidence, ChainError or
SignatureError come out of the loaders, `verify_chain` and every format's `verify`.
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attestnet.cli._common import parse_time, read_evidence_file
from attestnet.cli.bench_formats import CASES
from attestnet.errors import ChainError, ConfigError, MalformedEvidence, SignatureError
from attestnet.evidence import gotpm, nitro, registry
from attestnet.evidence.anchors import load_anchors, load_collateral, parse_anchors
from attestnet.evidence.model import Collateral, TrustAnchors
from attestnet.evidence.x509chain import (
    CERTIFICATE_ERRORS,
    check_chain_inputs,
    load_certificate,
    load_pem_certificates,
    verify_chain,
)

AT = datetime(2025, 1, 1, tzinfo=UTC)
START = datetime(2024, 1, 1, tzinfo=UTC)

# DER fragments of a certificate built by `_certificate` and what replaces them.
# Each replacement keeps the certificate loadable and breaks one lazily decoded field.
CORRUPTIONS = {
    # keyUsage's OID becomes basicConstraints': two basicConstraints extensions.
    "duplicate extension": (bytes.fromhex("0603551d0f"), bytes.fromhex("0603551d13")),
    # basicConstraints' OID becomes subjectKeyIdentifier's, whose value must be an
    # OCTET STRING, not the SEQUENCE that follows.
    "invalid extension value": (bytes.fromhex("0603551d13"), bytes.fromhex("0603551d0e")),
    # ecdsa-with-SHA256 becomes the unassigned 1.2.840.10045.4.3.7, in both places.
    "unknown signature algorithm": (
        bytes.fromhex("2a8648ce3d040302"),
        bytes.fromhex("2a8648ce3d040307"),
    ),
    # prime256v1 becomes the unsupported 1.2.840.10045.3.1.9.
    "unknown curve": (bytes.fromhex("2a8648ce3d030107"), bytes.fromhex("2a8648ce3d030109")),
    # The common name's UTF8String gets invalid UTF-8.
    "invalid subject": (b"\x0c\x07Test CA", b"\x0c\x07Test\xff\xfe\xfd"),
}


@dataclass(frozen=True)
class Pki:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    leaf: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(START)
        .not_valid_after(START + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, ca, ca, False, False), critical=True
        )
    )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    return Pki(
        root_key=root_key,
        root=_certificate("Test CA", "Test CA", root_key, root_key, ca=True),
        intermediate_key=intermediate_key,
        intermediate=_certificate(
            "Test Intermediate", "Test CA", intermediate_key, root_key, ca=True
        ),
        leaf=_certificate("Test Leaf", "Test Intermediate", leaf_key, intermediate_key, ca=False),
    )


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _corrupt_der(pki: Pki, corruption: str) -> bytes:
    """Return the DER of a CA certificate named "Test CA" with one field broken."""
    old, new = CORRUPTIONS[corruption]
    der = _der(pki.root)
    assert old in der, corruption
    return der.replace(old, new)


def _corrupt(pki: Pki, corruption: str) -> x509.Certificate:
    # A plain cryptography load succeeds: only reading the field fails.
    return x509.load_der_x509_certificate(_corrupt_der(pki, corruption))


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


# --- loaders ------------------------------------------------------------------------------


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corruption_is_found_only_when_read(pki: Pki, corruption: str) -> None:
    cert = _corrupt(pki, corruption)
    with pytest.raises(CERTIFICATE_ERRORS):
        _ = (cert.subject, cert.extensions, cert.signature_hash_algorithm, cert.public_key())


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_load_certificate_rejects_corrupt_field(pki: Pki, corruption: str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        load_certificate(_corrupt_der(pki, corruption), format="test", what="device certificate")
    assert info.value.format == "test"
    assert "device certificate" in info.value.detail


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_load_pem_certificates_rejects_corrupt_field(pki: Pki, corruption: str) -> None:
    bundle = _pem(_der(pki.intermediate)) + _pem(_corrupt_der(pki, corruption))
    with pytest.raises(MalformedEvidence) as info:
        load_pem_certificates(bundle, format="test", what="chain")
    assert "chain" in info.value.detail


def test_load_certificate_rejects_invalid_version(pki: Pki) -> None:
    der = _der(pki.root).replace(bytes.fromhex("a003020102"), bytes.fromhex("a003020107"), 1)
    with pytest.raises(MalformedEvidence, match="not a DER certificate"):
        load_certificate(der, format="test", what="certificate")


def test_load_certificate_rejects_garbage_and_trailing_bytes(pki: Pki) -> None:
    for data in (b"", b"\x30\x03\x02\x01\x00", _der(pki.root) + b"\x00"):
        with pytest.raises(MalformedEvidence):
            load_certificate(data, format="test", what="certificate")


def test_load_certificate_pem_needs_exactly_one(pki: Pki) -> None:
    single = _pem(_der(pki.root))
    assert load_certificate(single, format="test", what="certificate") == pki.root
    with pytest.raises(MalformedEvidence, match="contains 2 certificates"):
        load_certificate(single + _pem(_der(pki.leaf)), format="test", what="certificate")


def test_load_certificate_returns_decoded_object(pki: Pki) -> None:
    first = load_certificate(_der(pki.leaf), format="test", what="certificate")
    again = load_certificate(bytes(_der(pki.leaf)), format="test", what="certificate")
    assert first == pki.leaf
    # Parsed once per encoding: the same DER gives the same, already decoded object.
    assert again is first


def test_serial_zero_and_long_name_load_without_warning(pki: Pki) -> None:
    # AMD VCEKs carry serial number 0 and Google's TPM CA has a 79-character name.
    long_name = "tpm_ek_v1_cloud_host-signer-0-2020-10-22T14:02:08-07:00 K:1, 2:" + "x" * 15
    key = ec.generate_private_key(ec.SECP256R1())
    # cryptography rejects such a name unless _validate=False skips the length check.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        attribute = x509.NameAttribute(NameOID.COMMON_NAME, long_name, _validate=False)
    subject = x509.Name([attribute])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(_name("Test CA"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(START)
        .not_valid_after(START + timedelta(days=3650))
        .sign(pki.root_key, hashes.SHA256())
    )
    # Patching the serial number breaks the signature, so only the unpatched one chains.
    serial_zero = _der(cert).replace(bytes.fromhex("020101"), bytes.fromhex("020100"), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_certificate(serial_zero, format="test", what="certificate")
        assert loaded.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == long_name
        signed = load_certificate(_der(cert), format="test", what="certificate")
        assert verify_chain(signed, TrustAnchors((pki.root,)), AT) == [signed, pki.root]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert loaded.serial_number == 0


# --- verify_chain -------------------------------------------------------------------------


def test_chain_verifies(pki: Pki) -> None:
    path = verify_chain(pki.leaf, TrustAnchors((pki.root,)), AT, intermediates=[pki.intermediate])
    assert path == [pki.leaf, pki.intermediate, pki.root]


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_chain_corrupt_leaf_is_malformed(pki: Pki, corruption: str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        verify_chain(_corrupt(pki, corruption), TrustAnchors((pki.root,)), AT, format="test")
    assert info.value.format == "test"
    assert "leaf certificate" in info.value.detail


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_chain_corrupt_intermediate_is_malformed(pki: Pki, corruption: str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        verify_chain(
            pki.leaf,
            TrustAnchors((pki.root,)),
            AT,
            intermediates=[pki.intermediate, _corrupt(pki, corruption)],
            format="test",
        )
    assert "intermediate certificate 1" in info.value.detail


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_chain_corrupt_collateral_certificate_is_malformed(pki: Pki, corruption: str) -> None:
    collateral = Collateral(certificates=(pki.intermediate, _corrupt(pki, corruption)))
    with pytest.raises(MalformedEvidence) as info:
        verify_chain(pki.leaf, TrustAnchors((pki.root,)), AT, collateral, format="test")
    assert "collateral certificate 1" in info.value.detail


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_chain_corrupt_anchor_is_chain_error(pki: Pki, corruption: str) -> None:
    anchors = TrustAnchors((_corrupt(pki, corruption), pki.root))
    with pytest.raises(ChainError) as info:
        verify_chain(pki.leaf, anchors, AT, intermediates=[pki.intermediate])
    assert info.value.check == "trust anchor"
    assert "trust anchor 0" in str(info.value)


def _crl(pki: Pki, revoked_serial: int | None = None) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name("Test CA"))
        .last_update(START)
        .next_update(START + timedelta(days=3650))
    )
    if revoked_serial is not None:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked_serial)
            .revocation_date(START)
            .build()
        )
    return builder.sign(pki.root_key, hashes.SHA256())


def test_chain_revoked_intermediate(pki: Pki) -> None:
    collateral = Collateral(crls=(_crl(pki, pki.intermediate.serial_number),))
    with pytest.raises(ChainError) as info:
        verify_chain(
            pki.leaf, TrustAnchors((pki.root,)), AT, collateral, intermediates=[pki.intermediate]
        )
    assert info.value.check == "certificate revocation"


def test_chain_crl_with_bad_signature(pki: Pki) -> None:
    der = bytearray(_crl(pki).public_bytes(Encoding.DER))
    der[-5] ^= 0x01  # inside the ECDSA signature's s
    collateral = Collateral(crls=(x509.load_der_x509_crl(bytes(der)),))
    with pytest.raises(SignatureError) as info:
        verify_chain(
            pki.leaf, TrustAnchors((pki.root,)), AT, collateral, intermediates=[pki.intermediate]
        )
    assert info.value.check == "crl signature"


def test_chain_corrupt_crl_is_malformed(pki: Pki) -> None:
    old, new = CORRUPTIONS["unknown signature algorithm"]
    der = _crl(pki).public_bytes(Encoding.DER).replace(old, new)
    collateral = Collateral(crls=(x509.load_der_x509_crl(der),))
    with pytest.raises(MalformedEvidence) as info:
        verify_chain(pki.leaf, TrustAnchors((pki.root,)), AT, collateral, format="test")
    assert "collateral CRL 0" in info.value.detail


def test_check_chain_inputs_accepts_good_inputs(pki: Pki) -> None:
    check_chain_inputs(
        TrustAnchors((pki.root,)),
        Collateral(certificates=(pki.intermediate,), crls=(_crl(pki),)),
        [pki.leaf],
    )


# --- anchors and collateral files ---------------------------------------------------------


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_anchor_file_with_corrupt_certificate_is_config_error(pki: Pki, corruption: str) -> None:
    for data in (_corrupt_der(pki, corruption), _pem(_corrupt_der(pki, corruption))):
        with pytest.raises(ConfigError):
            parse_anchors(data, "anchor.pem")


# --- every format, with the corpus samples of the format benchmark -------------------------


@dataclass(frozen=True)
class Sample:
    label: str
    format: str
    data: bytes
    anchors: TrustAnchors
    collateral: Collateral
    at: datetime


def _samples(corpus: Path) -> list[Sample]:
    samples = []
    for case in CASES:
        if not case.anchors:
            continue  # the PSA MAC sample has a symmetric key only
        samples.append(
            Sample(
                case.label,
                case.format,
                read_evidence_file(corpus / case.evidence),
                load_anchors([corpus / a for a in case.anchors]),
                load_collateral([corpus / c for c in case.collateral]),
                parse_time(case.at) if case.at else datetime.now(UTC),
            )
        )
    return samples


@pytest.fixture(scope="module")
def samples(corpus: Path) -> list[Sample]:
    return _samples(corpus)


# The formats whose verification reads certificates from collateral.
CHAIN_FORMATS = {"sev-snp", "gotpm", "dcap", "nitro", "spdm"}


def test_samples_cover_certificate_formats(samples: list[Sample]) -> None:
    formats = {sample.format for sample in samples}
    assert formats >= CHAIN_FORMATS


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_format_corrupt_collateral_certificate(
    samples: list[Sample], pki: Pki, corruption: str
) -> None:
    for sample in samples:
        if sample.format not in CHAIN_FORMATS:
            continue
        module = registry.load(sample.format)
        collateral = sample.collateral.merged(Collateral(certificates=(_corrupt(pki, corruption),)))
        with pytest.raises(MalformedEvidence) as info:
            module.verify(sample.data, anchors=sample.anchors, at=sample.at, collateral=collateral)
        assert "collateral certificate" in info.value.detail, sample.label


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_format_corrupt_anchor(samples: list[Sample], pki: Pki, corruption: str) -> None:
    for sample in samples:
        module = registry.load(sample.format)
        anchors = sample.anchors.merged(TrustAnchors((_corrupt(pki, corruption),)))
        with pytest.raises(ChainError) as info:
            module.verify(sample.data, anchors=anchors, at=sample.at, collateral=sample.collateral)
        assert info.value.check == "trust anchor", sample.label


def test_format_samples_still_verify(samples: list[Sample]) -> None:
    for sample in samples:
        module = registry.load(sample.format)
        evidence = module.verify(
            sample.data, anchors=sample.anchors, at=sample.at, collateral=sample.collateral
        )
        assert evidence.checks, sample.label


# Extension OIDs swapped in embedded certificates: basicConstraints, authorityKeyIdentifier
# or keyUsage becomes subjectKeyIdentifier, so the certificate has two of them or a
# value of the wrong type. Either is found only when the extensions are decoded.
_EXTENSION_SWAPS = (
    (bytes.fromhex("0603551d13"), bytes.fromhex("0603551d0e")),
    (bytes.fromhex("0603551d23"), bytes.fromhex("0603551d0e")),
    (bytes.fromhex("0603551d0f"), bytes.fromhex("0603551d0e")),
)


def _patch_embedded_certificate(data: bytes, der: bytes) -> bytes:
    """Break the extensions of a certificate that `data` embeds as DER."""
    start = data.index(der)
    for old, new in _EXTENSION_SWAPS:
        if old in der:
            return data[:start] + der.replace(old, new, 1) + data[start + len(der) :]
    raise AssertionError("the certificate has none of the extensions to swap")


def test_format_corrupt_embedded_certificate(samples: list[Sample]) -> None:
    # go-tpm-tools carries the AK certificate and Nitro the leaf and CA bundle as DER.
    checked = 0
    for sample in samples:
        module = registry.load(sample.format)
        if sample.format == "gotpm":
            ak_cert = gotpm.parse(sample.data).ak_cert
            assert ak_cert is not None
            embedded = [_der(ak_cert)]
        elif sample.format == "nitro":
            document = nitro.parse(sample.data).document
            embedded = [document.certificate, *document.cabundle]
        else:
            continue
        for der in embedded:
            data = _patch_embedded_certificate(sample.data, der)
            with pytest.raises(MalformedEvidence) as info:
                module.verify(
                    data, anchors=sample.anchors, at=sample.at, collateral=sample.collateral
                )
            assert info.value.format == sample.format
            checked += 1
    assert checked >= 3
