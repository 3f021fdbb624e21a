"""Load trust anchors and collateral from bytes and files.

Trust anchors: PEM or DER certificates (one or a bundle), PEM or DER public keys,
and JWKs (a single key or a JWK Set). Collateral: certificates, CRLs and JSON
documents, from one file or every file in a folder.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    load_der_public_key,
    load_pem_private_key,
    load_pem_public_key,
)

from attestnet.errors import ConfigError, MalformedEvidence
from attestnet.evidence.model import Collateral, TrustAnchors
from attestnet.evidence.x509chain import (
    check_crl_fields,
    load_certificate,
    load_pem_certificates,
)

__all__ = [
    "jwk_to_public_key",
    "load_anchor_file",
    "load_anchors",
    "load_collateral",
    "load_collateral_file",
    "parse_anchors",
]

logger = logging.getLogger(__name__)

_CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


def _load_der_certificate(data: bytes, source: str) -> x509.Certificate:
    # load_certificate accepts the defects of real hardware chains (AMD VCEK serial
    # number 0, Google's over-long TPM CA names) and rejects corrupt fields now rather
    # than in the middle of a verification.
    return load_certificate(data, format="certificate", what=source)


def _load_pem_certificates(data: bytes, source: str) -> tuple[x509.Certificate, ...]:
    return load_pem_certificates(data, format="certificate", what=source)


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def jwk_to_public_key(jwk: dict[str, Any]) -> PublicKeyTypes:
    """Convert an EC, RSA or OKP (Ed25519) JWK to a public key; private parts are ignored."""
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            curve = _CURVES[jwk["crv"]]
            x = int.from_bytes(_b64url(jwk["x"]), "big")
            y = int.from_bytes(_b64url(jwk["y"]), "big")
            return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        if kty == "RSA":
            n = int.from_bytes(_b64url(jwk["n"]), "big")
            e = int.from_bytes(_b64url(jwk["e"]), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(_b64url(jwk["x"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid {kty} JWK: {exc}") from None
    raise ConfigError(
        f"unsupported JWK: kty {kty!r}, crv {jwk.get('crv')!r}; use EC, RSA or Ed25519"
    )


def _public_from_private_pem(data: bytes, source: str) -> PublicKeyTypes:
    # Test vectors (PSA, CoRIM) often publish only the private key PEM of a test
    # key. The anchor is its public half, and the private half is discarded.
    try:
        private_key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: invalid PEM private key: {exc}") from None
    logger.warning("%s is a private key; using only its public key as a trust anchor", source)
    return private_key.public_key()


def parse_anchors(data: bytes, source: str = "anchor") -> TrustAnchors:
    """Parse one anchor file's content: certificates, a public key or a JWK (Set)."""
    stripped = data.strip()
    if stripped.startswith(b"{"):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise ConfigError(f"{source}: invalid JSON: {exc}") from None
        keys = document.get("keys", [document]) if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise ConfigError(f"{source}: expected a JWK or a JWK Set")
        return TrustAnchors(public_keys=tuple(jwk_to_public_key(k) for k in keys))

    if b"-----BEGIN" in stripped:
        certificates: tuple[x509.Certificate, ...] = ()
        if b"CERTIFICATE-----" in stripped:
            try:
                certificates = _load_pem_certificates(stripped, source)
            except MalformedEvidence as exc:
                raise ConfigError(f"{source}: invalid PEM certificate: {exc.detail}") from None
        public_keys: tuple[PublicKeyTypes, ...] = ()
        if b"PUBLIC KEY-----" in stripped:
            try:
                public_keys = (load_pem_public_key(stripped),)
            except ValueError as exc:
                raise ConfigError(f"{source}: invalid PEM public key: {exc}") from None
        if not public_keys and b"PRIVATE KEY-----" in stripped:
            public_keys = (_public_from_private_pem(stripped, source),)
        if certificates or public_keys:
            return TrustAnchors(certificates, public_keys)
        raise ConfigError(
            f"{source}: PEM file contains no CERTIFICATE, PUBLIC KEY or PRIVATE KEY; "
            "give one of those"
        )

    try:
        return TrustAnchors(certificates=(_load_der_certificate(data, source),))
    except MalformedEvidence:
        pass
    try:
        return TrustAnchors(public_keys=(load_der_public_key(data),))
    except ValueError:
        pass
    raise ConfigError(f"{source}: not a certificate, public key or JWK; give PEM, DER or JWK JSON")


def load_anchor_file(path: str | Path) -> TrustAnchors:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read trust anchor {path}: {exc.strerror}") from None
    return parse_anchors(data, str(path))


def load_anchors(paths: list[str] | list[Path]) -> TrustAnchors:
    anchors = TrustAnchors()
    for path in paths:
        anchors = anchors.merged(load_anchor_file(path))
    return anchors


def load_collateral_file(path: str | Path) -> Collateral:
    """Parse one collateral file: PEM (certificates and CRLs), DER, or JSON."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read collateral {path}: {exc.strerror}") from None
    stripped = data.strip()

    if stripped.startswith((b"{", b"[")):
        try:
            return Collateral(documents=((path.name, json.loads(stripped)),))
        except ValueError as exc:
            raise ConfigError(f"collateral {path}: invalid JSON: {exc}") from None

    if b"-----BEGIN" in stripped:
        certificates: tuple[x509.Certificate, ...] = ()
        crls: list[x509.CertificateRevocationList] = []
        try:
            if b"CERTIFICATE-----" in stripped:
                certificates = _load_pem_certificates(stripped, f"collateral {path}")
            for block in stripped.split(b"-----BEGIN X509 CRL-----")[1:]:
                crl = x509.load_pem_x509_crl(b"-----BEGIN X509 CRL-----" + block)
                check_crl_fields(crl, format="crl", what=f"collateral {path}")
                crls.append(crl)
        except MalformedEvidence as exc:
            raise ConfigError(f"collateral {path}: invalid PEM: {exc.detail}") from None
        except ValueError as exc:
            raise ConfigError(f"collateral {path}: invalid PEM: {exc}") from None
        return Collateral(certificates=certificates, crls=tuple(crls))

    try:
        return Collateral(certificates=(_load_der_certificate(data, f"collateral {path}"),))
    except MalformedEvidence:
        pass
    try:
        crl = x509.load_der_x509_crl(data)
        check_crl_fields(crl, format="crl", what=f"collateral {path}")
        return Collateral(crls=(crl,))
    except (ValueError, MalformedEvidence):
        pass
    raise ConfigError(f"collateral {path}: not a certificate, CRL or JSON document")


def load_collateral(paths: list[str] | list[Path]) -> Collateral:
    """Load collateral from files and from every regular file inside given folders."""
    collateral = Collateral()
    for entry in map(Path, paths):
        files = sorted(p for p in entry.iterdir() if p.is_file()) if entry.is_dir() else [entry]
        for file in files:
            collateral = collateral.merged(load_collateral_file(file))
    return collateral
