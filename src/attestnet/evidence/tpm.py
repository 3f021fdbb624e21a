"""TPM 2.0 quotes: parse TPMS_ATTEST, TPMT_SIGNATURE and TPMT_PUBLIC, verify quotes.

The structures follow TPM 2.0 Library, Part 2 (Structures): every integer is
big-endian, and a TPM2B is a 16-bit size followed by that many bytes. The parsers
accept exactly one structure and reject trailing bytes, so that the bytes a
signature covers are the bytes that were parsed.

`verify` checks the attestnet TPM evidence container that
`attestnet.attesters.tpm.TpmAttester` produces (see `parse` for its layout).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from attestnet.errors import ChainError, MalformedEvidence, VerificationError
from attestnet.evidence import cmw
from attestnet.evidence.model import Collateral, TrustAnchors, VerifiedEvidence
from attestnet.evidence.signatures import Scheme, verify_signature
from attestnet.evidence.x509chain import (
    load_certificate,
    public_key_der,
    subject_text,
    verify_chain,
)

__all__ = [
    "ALG_ECC",
    "ALG_ECDSA",
    "ALG_RSA",
    "ALG_RSAPSS",
    "ALG_RSASSA",
    "ALG_SHA1",
    "ALG_SHA256",
    "ALG_SHA384",
    "ALG_SHA512",
    "FORMAT",
    "MEDIA_TYPE",
    "TPM_GENERATED_VALUE",
    "TPM_ST_ATTEST_CERTIFY",
    "TPM_ST_ATTEST_QUOTE",
    "Attest",
    "CertifyInfo",
    "ClockInfo",
    "PcrSelection",
    "QuoteInfo",
    "TpmEvidence",
    "TpmPublic",
    "TpmSignature",
    "check_pcr_digest",
    "encode_container",
    "hash_name",
    "looks_like",
    "parse",
    "parse_attest",
    "parse_pcr_selection_list",
    "parse_public",
    "parse_signature",
    "pcr_digest",
    "verify",
    "verify_quote_signature",
]

FORMAT = "tpm"

TPM_GENERATED_VALUE = 0xFF544347  # "\xffTCG": only the TPM itself signs data starting so
TPM_ST_ATTEST_CERTIFY = 0x8017
TPM_ST_ATTEST_QUOTE = 0x8018

# TPM_ALG_ID values (TCG Algorithm Registry).
ALG_RSA = 0x0001
ALG_SHA1 = 0x0004
ALG_NULL = 0x0010
ALG_SHA256 = 0x000B
ALG_SHA384 = 0x000C
ALG_SHA512 = 0x000D
ALG_RSASSA = 0x0014
ALG_RSAES = 0x0015
ALG_RSAPSS = 0x0016
ALG_OAEP = 0x0017
ALG_ECDSA = 0x0018
ALG_ECDH = 0x0019
ALG_ECDAA = 0x001A
ALG_SM2 = 0x001B
ALG_ECSCHNORR = 0x001C
ALG_ECC = 0x0023
ALG_KEYEDHASH = 0x0008
ALG_SYMCIPHER = 0x0025
ALG_SHA3_256 = 0x0027
ALG_SHA3_384 = 0x0028
ALG_SHA3_512 = 0x0029

_HASHES: dict[int, tuple[str, type[hashes.HashAlgorithm]]] = {
    ALG_SHA1: ("sha1", hashes.SHA1),
    ALG_SHA256: ("sha256", hashes.SHA256),
    ALG_SHA384: ("sha384", hashes.SHA384),
    ALG_SHA512: ("sha512", hashes.SHA512),
    ALG_SHA3_256: ("sha3_256", hashes.SHA3_256),
    ALG_SHA3_384: ("sha3_384", hashes.SHA3_384),
    ALG_SHA3_512: ("sha3_512", hashes.SHA3_512),
}

_SIGNATURE_SCHEMES: dict[int, tuple[str, Scheme]] = {
    ALG_RSASSA: ("rsassa", "rsa-pkcs1"),
    ALG_RSAPSS: ("rsapss", "rsa-pss"),
    ALG_ECDSA: ("ecdsa", "ecdsa-raw"),
}

# TPM_ECC_CURVE values for the NIST curves that `cryptography` supports.
_CURVES: dict[int, tuple[str, type[ec.EllipticCurve]]] = {
    0x0003: ("nist_p256", ec.SECP256R1),
    0x0004: ("nist_p384", ec.SECP384R1),
    0x0005: ("nist_p521", ec.SECP521R1),
}

# TPMA_OBJECT bits (Part 2, 8.3).
ATTR_FIXED_TPM = 1 << 1
ATTR_FIXED_PARENT = 1 << 4
ATTR_SENSITIVE_DATA_ORIGIN = 1 << 5
ATTR_RESTRICTED = 1 << 16
ATTR_DECRYPT = 1 << 17
ATTR_SIGN = 1 << 18

_MAX_PCR_SELECT = 32  # sizeofSelect bytes: 256 PCRs, far above any TPM's 24
_MAX_BANKS = 16


def hash_name(alg: int) -> str:
    """Return the bank name used in measurement names ("sha256") for a TPM_ALG_ID."""
    entry = _HASHES.get(alg)
    return entry[0] if entry else f"alg-{alg:#06x}"


def _hash_algorithm(alg: int, what: str) -> hashes.HashAlgorithm:
    entry = _HASHES.get(alg)
    if entry is None:
        raise MalformedEvidence(FORMAT, f"{what}: unsupported hash algorithm {alg:#06x}")
    return entry[1]()


class _Reader:
    """A cursor over one TPM structure; every read failure is MalformedEvidence."""

    def __init__(self, data: bytes, structure: str) -> None:
        self.data = data
        self.offset = 0
        self.structure = structure

    def fail(self, detail: str) -> MalformedEvidence:
        return MalformedEvidence(FORMAT, f"{self.structure} at offset {self.offset}: {detail}")

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise self.fail(
                f"{field} needs {size} bytes, only {len(self.data) - self.offset} remain"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        value: int = struct.unpack(">H", self.take(2, field))[0]
        return value

    def u32(self, field: str) -> int:
        value: int = struct.unpack(">I", self.take(4, field))[0]
        return value

    def u64(self, field: str) -> int:
        value: int = struct.unpack(">Q", self.take(8, field))[0]
        return value

    def tpm2b(self, field: str) -> bytes:
        return self.take(self.u16(f"{field}.size"), field)

    def end(self) -> None:
        if self.offset != len(self.data):
            raise self.fail(f"{len(self.data) - self.offset} trailing bytes")


# --- TPMS_ATTEST ---------------------------------------------------------------------


@dataclass(frozen=True)
class PcrSelection:
    """One TPMS_PCR_SELECTION: a PCR bank and the PCR indices selected in it."""

    hash_alg: int
    pcrs: tuple[int, ...]
    size_of_select: int = 3

    @property
    def bank(self) -> str:
        return hash_name(self.hash_alg)

    def to_bytes(self) -> bytes:
        bitmap = bytearray(self.size_of_select)
        for index in self.pcrs:
            bitmap[index // 8] |= 1 << (index % 8)
        return struct.pack(">HB", self.hash_alg, self.size_of_select) + bytes(bitmap)


@dataclass(frozen=True)
class ClockInfo:
    """TPMS_CLOCK_INFO: milliseconds since the TPM's clock was cleared, and reset counters."""

    clock: int
    reset_count: int
    restart_count: int
    safe: bool


@dataclass(frozen=True)
class QuoteInfo:
    """TPMS_QUOTE_INFO: the quoted PCR selection and the digest of those PCR values."""

    pcr_select: tuple[PcrSelection, ...]
    pcr_digest: bytes


@dataclass(frozen=True)
class CertifyInfo:
    """TPMS_CERTIFY_INFO: the name and qualified name of the certified object."""

    name: bytes
    qualified_name: bytes


@dataclass(frozen=True)
class Attest:
    """A parsed TPMS_ATTEST; `raw` is the exact signed byte string."""

    type: int
    qualified_signer: bytes
    extra_data: bytes
    clock_info: ClockInfo
    firmware_version: int
    attested: QuoteInfo | CertifyInfo
    raw: bytes

    @property
    def quote(self) -> QuoteInfo:
        """The TPMS_QUOTE_INFO; raises MalformedEvidence if this is not a quote."""
        if not isinstance(self.attested, QuoteInfo):
            raise MalformedEvidence(
                FORMAT, f"TPMS_ATTEST type is {self.type:#06x}, expected quote 0x8018"
            )
        return self.attested


def _pcr_selection(reader: _Reader) -> tuple[PcrSelection, ...]:
    count = reader.u32("pcrSelect.count")
    if count > _MAX_BANKS:
        raise reader.fail(f"pcrSelect.count {count} exceeds {_MAX_BANKS}")
    selections = []
    for _ in range(count):
        hash_alg = reader.u16("pcrSelections.hash")
        size = reader.u8("pcrSelections.sizeofSelect")
        if size > _MAX_PCR_SELECT:
            raise reader.fail(f"sizeofSelect {size} exceeds {_MAX_PCR_SELECT}")
        bitmap = reader.take(size, "pcrSelections.pcrSelect")
        pcrs = tuple(i for i in range(size * 8) if bitmap[i // 8] >> (i % 8) & 1)
        selections.append(PcrSelection(hash_alg, pcrs, size))
    return tuple(selections)


def parse_attest(data: bytes) -> Attest:
    """Parse a TPMS_ATTEST of type quote or certify; raise MalformedEvidence otherwise."""
    reader = _Reader(bytes(data), "TPMS_ATTEST")
    magic = reader.u32("magic")
    if magic != TPM_GENERATED_VALUE:
        raise reader.fail(f"magic is {magic:#010x}, expected {TPM_GENERATED_VALUE:#010x}")
    attest_type = reader.u16("type")
    qualified_signer = reader.tpm2b("qualifiedSigner")
    extra_data = reader.tpm2b("extraData")
    clock = reader.u64("clockInfo.clock")
    reset_count = reader.u32("clockInfo.resetCount")
    restart_count = reader.u32("clockInfo.restartCount")
    safe = reader.u8("clockInfo.safe")
    if safe > 1:
        raise reader.fail(f"clockInfo.safe is {safe}, expected 0 or 1")
    firmware_version = reader.u64("firmwareVersion")

    attested: QuoteInfo | CertifyInfo
    if attest_type == TPM_ST_ATTEST_QUOTE:
        selection = _pcr_selection(reader)
        attested = QuoteInfo(selection, reader.tpm2b("pcrDigest"))
    elif attest_type == TPM_ST_ATTEST_CERTIFY:
        name = reader.tpm2b("name")
        attested = CertifyInfo(name, reader.tpm2b("qualifiedName"))
    else:
        raise reader.fail(
            f"unsupported type {attest_type:#06x}; expected quote 0x8018 or certify 0x8017"
        )
    reader.end()
    return Attest(
        type=attest_type,
        qualified_signer=qualified_signer,
        extra_data=extra_data,
        clock_info=ClockInfo(clock, reset_count, restart_count, bool(safe)),
        firmware_version=firmware_version,
        attested=attested,
        raw=reader.data,
    )


# --- TPMT_SIGNATURE ------------------------------------------------------------------


@dataclass(frozen=True)
class TpmSignature:
    """A parsed TPMT_SIGNATURE: RSASSA, RSAPSS or ECDSA with its hash algorithm.

    `signature` is the RSA signature, or r||s for ECDSA with both halves padded to
    the longer one (the TPM2B_ECC_PARAMETER values may come without leading zeros).
    """

    sig_alg: int
    hash_alg: int
    signature: bytes

    @property
    def scheme(self) -> Scheme:
        return _SIGNATURE_SCHEMES[self.sig_alg][1]

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm:
        return _hash_algorithm(self.hash_alg, "TPMT_SIGNATURE")

    @property
    def name(self) -> str:
        return f"{_SIGNATURE_SCHEMES[self.sig_alg][0]}-{hash_name(self.hash_alg)}"


def parse_signature(data: bytes) -> TpmSignature:
    """Parse a TPMT_SIGNATURE (RSASSA 0x0014, RSAPSS 0x0016 or ECDSA 0x0018)."""
    reader = _Reader(bytes(data), "TPMT_SIGNATURE")
    sig_alg = reader.u16("sigAlg")
    if sig_alg not in _SIGNATURE_SCHEMES:
        raise reader.fail(f"unsupported sigAlg {sig_alg:#06x}; expected RSASSA, RSAPSS or ECDSA")
    hash_alg = reader.u16("hash")
    if hash_alg not in _HASHES:
        raise reader.fail(f"unsupported hash algorithm {hash_alg:#06x}")
    if sig_alg == ALG_ECDSA:
        r = reader.tpm2b("signatureR")
        s = reader.tpm2b("signatureS")
        if not r or not s:
            raise reader.fail("empty ECDSA signatureR or signatureS")
        width = max(len(r), len(s))
        value = r.rjust(width, b"\0") + s.rjust(width, b"\0")
    else:
        value = reader.tpm2b("sig")
        if not value:
            raise reader.fail("empty RSA signature")
    reader.end()
    return TpmSignature(sig_alg, hash_alg, value)


# --- TPMT_PUBLIC ---------------------------------------------------------------------


@dataclass(frozen=True)
class TpmPublic:
    """A parsed TPMT_PUBLIC of an RSA or ECC key; `raw` is the TPMT_PUBLIC encoding.

    `scheme` and `scheme_hash` are the key's scheme and its hash (ALG_NULL and 0
    when the key has none). `curve` is the TPM_ECC_CURVE of an ECC key, 0 for RSA.
    """

    type: int
    name_alg: int
    object_attributes: int
    auth_policy: bytes
    symmetric: int
    scheme: int
    scheme_hash: int
    key_bits: int
    exponent: int
    curve: int
    unique: tuple[bytes, ...]
    raw: bytes

    def public_key(self) -> PublicKeyTypes:
        """Return the key as a `cryptography` public key; MalformedEvidence if invalid."""
        try:
            if self.type == ALG_RSA:
                n = int.from_bytes(self.unique[0], "big")
                return rsa.RSAPublicNumbers(self.exponent or 65537, n).public_key()
            curve = _CURVES[self.curve][1]()
            x = int.from_bytes(self.unique[0], "big")
            y = int.from_bytes(self.unique[1], "big")
            return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        except ValueError as exc:
            raise MalformedEvidence(FORMAT, f"TPMT_PUBLIC: invalid public key: {exc}") from None

    def name(self) -> bytes:
        """Return the TPM name: nameAlg (2 bytes) || H_nameAlg(TPMT_PUBLIC)."""
        digest = hashlib.new(hash_name(self.name_alg), self.raw).digest()
        return struct.pack(">H", self.name_alg) + digest

    def has_attributes(self, mask: int) -> bool:
        return self.object_attributes & mask == mask


# Key schemes whose details start with a hash algorithm (ECDAA adds a 16-bit count).
_HASHED_SCHEMES = frozenset(
    {ALG_RSASSA, ALG_RSAPSS, ALG_OAEP, ALG_ECDSA, ALG_ECDH, ALG_ECDAA, ALG_SM2, ALG_ECSCHNORR}
)


def _symmetric(reader: _Reader) -> int:
    algorithm = reader.u16("symmetric.algorithm")
    if algorithm != ALG_NULL:
        reader.u16("symmetric.keyBits")
        reader.u16("symmetric.mode")
    return algorithm


def _scheme(reader: _Reader, structure: str) -> tuple[int, int]:
    scheme = reader.u16(f"{structure}.scheme")
    if scheme in (ALG_NULL, ALG_RSAES):
        return scheme, 0
    if scheme not in _HASHED_SCHEMES:
        raise reader.fail(f"unsupported {structure}.scheme {scheme:#06x}")
    hash_alg = reader.u16(f"{structure}.details.hashAlg")
    if scheme == ALG_ECDAA:
        reader.u16(f"{structure}.details.count")
    return scheme, hash_alg


def _parse_tpmt_public(data: bytes) -> TpmPublic:
    reader = _Reader(data, "TPMT_PUBLIC")
    key_type = reader.u16("type")
    if key_type not in (ALG_RSA, ALG_ECC):
        raise reader.fail(f"unsupported type {key_type:#06x}; expected RSA or ECC")
    name_alg = reader.u16("nameAlg")
    if name_alg not in _HASHES:
        raise reader.fail(f"unsupported nameAlg {name_alg:#06x}")
    attributes = reader.u32("objectAttributes")
    auth_policy = reader.tpm2b("authPolicy")
    symmetric = _symmetric(reader)

    if key_type == ALG_RSA:
        scheme, scheme_hash = _scheme(reader, "TPMT_RSA_SCHEME")
        key_bits = reader.u16("keyBits")
        exponent = reader.u32("exponent")
        modulus = reader.tpm2b("unique.rsa")
        if not modulus:
            raise reader.fail("empty RSA modulus")
        curve = 0
        unique: tuple[bytes, ...] = (modulus,)
    else:
        scheme, scheme_hash = _scheme(reader, "TPMT_ECC_SCHEME")
        curve = reader.u16("curveID")
        if curve not in _CURVES:
            raise reader.fail(f"unsupported curveID {curve:#06x}")
        kdf = reader.u16("kdf.scheme")
        if kdf != ALG_NULL:
            reader.u16("kdf.details.hashAlg")
        x = reader.tpm2b("unique.ecc.x")
        y = reader.tpm2b("unique.ecc.y")
        if not x or not y:
            raise reader.fail("empty ECC point coordinate")
        key_bits = _CURVES[curve][1]().key_size
        exponent = 0
        unique = (x, y)
    reader.end()
    return TpmPublic(
        type=key_type,
        name_alg=name_alg,
        object_attributes=attributes,
        auth_policy=auth_policy,
        symmetric=symmetric,
        scheme=scheme,
        scheme_hash=scheme_hash,
        key_bits=key_bits,
        exponent=exponent,
        curve=curve,
        unique=unique,
        raw=data,
    )


def parse_public(data: bytes) -> TpmPublic:
    """Parse a TPM2B_PUBLIC or a bare TPMT_PUBLIC of an RSA or ECC key.

    The input is taken as a TPM2B_PUBLIC when its first two bytes equal the length
    of the rest. A TPMT_PUBLIC starts with its type (0x0001 or 0x0023), which can
    equal that length only for inputs far shorter than any real key.
    """
    data = bytes(data)
    if len(data) >= 2 and int.from_bytes(data[:2], "big") == len(data) - 2:
        data = data[2:]
    return _parse_tpmt_public(data)


# --- quote checks --------------------------------------------------------------------


def verify_quote_signature(
    attest_bytes: bytes, signature: TpmSignature, key: PublicKeyTypes
) -> None:
    """Verify `signature` by `key` over the TPMS_ATTEST bytes; raise SignatureError."""
    verify_signature(
        key,
        signature.signature,
        bytes(attest_bytes),
        scheme=signature.scheme,
        hash_algorithm=signature.hash_algorithm,
        check="quote signature",
        what=f"TPMS_ATTEST ({signature.name})",
    )


PcrValues = Mapping[tuple[int, int], bytes]
"""PCR values keyed by (bank hash TPM_ALG_ID, PCR index)."""


def pcr_digest(selection: Sequence[PcrSelection], pcr_values: PcrValues, hash_alg: int) -> bytes:
    """Compute a quote's pcrDigest: H(the selected PCR values in selection order).

    TPM2_Quote concatenates the banks in the order of the selection list and the
    PCRs of each bank in ascending index order, then hashes with the signing
    scheme's hash (`hash_alg`). Raises VerificationError when a selected PCR
    value is missing.
    """
    digest = hashes.Hash(_hash_algorithm(hash_alg, "pcr digest"))
    for bank in selection:
        for index in sorted(bank.pcrs):
            value = pcr_values.get((bank.hash_alg, index))
            if value is None:
                raise VerificationError(
                    "pcr digest",
                    "the quote selects a PCR whose value was not supplied",
                    claim=f"pcr/{bank.bank}/{index}",
                    expected="a PCR value",
                    actual="missing",
                )
            digest.update(value)
    return digest.finalize()


def check_pcr_digest(attest: Attest, pcr_values: PcrValues, hash_alg: int) -> None:
    """Raise VerificationError ("pcr digest") unless the quote's pcrDigest matches."""
    quote = attest.quote
    computed = pcr_digest(quote.pcr_select, pcr_values, hash_alg)
    if computed != quote.pcr_digest:
        raise VerificationError(
            "pcr digest",
            "the quoted pcrDigest does not match the supplied PCR values",
            claim="pcrDigest",
            expected=quote.pcr_digest,
            actual=computed,
        )


def parse_pcr_selection_list(data: bytes) -> tuple[PcrSelection, ...]:
    """Parse a TPML_PCR_SELECTION (count, then TPMS_PCR_SELECTION entries)."""
    reader = _Reader(bytes(data), "TPML_PCR_SELECTION")
    selection = _pcr_selection(reader)
    reader.end()
    return selection


# --- the attestnet TPM evidence container --------------------------------------------

MEDIA_TYPE = "application/vnd.attestnet.tpm-quote+cbor"
"""CMW media type of the container below."""

_MEDIA_TYPE_PREFIX = cbor2.dumps(MEDIA_TYPE)


@dataclass(frozen=True)
class TpmEvidence:
    """A parsed attestnet TPM evidence container.

    The container is a CBOR map with text keys:

    - "quote": bstr, the TPMS_ATTEST of a TPM2_Quote (type 0x8018);
    - "signature": bstr, its TPMT_SIGNATURE by the AK;
    - "pcrs": {bank TPM_ALG_ID (uint) => {PCR index (uint) => bstr}}, exactly the
      quoted PCRs' values;
    - "ak-public": bstr, the AK's TPMT_PUBLIC;
    - "ak-certificates" (optional): [+ bstr], DER certificates, the AK certificate
      first and then intermediates; absent when verifiers pin the AK public key.

    On the wire it is the value of a CBOR CMW record of type `MEDIA_TYPE`.
    """

    attest: Attest
    signature: TpmSignature
    pcr_values: dict[tuple[int, int], bytes]
    ak_public: TpmPublic
    ak_certificates: tuple[x509.Certificate, ...]


_CONTAINER_KEYS = {"quote", "signature", "pcrs", "ak-public", "ak-certificates"}


def encode_container(
    attest: bytes,
    signature: bytes,
    pcr_values: Mapping[tuple[int, int], bytes],
    ak_public: bytes,
    ak_certificates: Sequence[bytes] = (),
) -> bytes:
    """Encode the container that `TpmEvidence` describes (without the CMW record)."""
    banks: dict[int, dict[int, bytes]] = {}
    for (hash_alg, index), value in sorted(pcr_values.items()):
        banks.setdefault(hash_alg, {})[index] = value
    container: dict[str, Any] = {
        "quote": attest,
        "signature": signature,
        "pcrs": banks,
        "ak-public": ak_public,
    }
    if ak_certificates:
        container["ak-certificates"] = list(ak_certificates)
    return cbor2.dumps(container)


def _container_bytes(data: bytes) -> bytes:
    """Unwrap the CMW record; a bare container map is accepted as well."""
    if data and data[0] >> 5 == 5:  # CBOR major type 5: a map
        return data
    record = cmw.decode(data)
    if not isinstance(record, cmw.CmwRecord):
        raise MalformedEvidence(FORMAT, "expected a CMW record, got a CMW collection")
    if record.type != MEDIA_TYPE:
        raise MalformedEvidence(FORMAT, f"CMW type is {record.type!r}, expected {MEDIA_TYPE!r}")
    return record.value


def _bytes_field(container: dict[str, Any], key: str) -> bytes:
    value = container.get(key)
    if not isinstance(value, bytes):
        raise MalformedEvidence(FORMAT, f"container field {key!r} must be a byte string")
    return value


def _pcr_values(item: Any) -> dict[tuple[int, int], bytes]:
    if not isinstance(item, dict):
        raise MalformedEvidence(FORMAT, "container field 'pcrs' must be a map")
    values: dict[tuple[int, int], bytes] = {}
    for hash_alg, bank in item.items():
        if type(hash_alg) is not int or not isinstance(bank, dict):
            raise MalformedEvidence(FORMAT, "'pcrs' must map a bank TPM_ALG_ID to a map")
        size = _hash_algorithm(hash_alg, "pcrs").digest_size
        for index, value in bank.items():
            if type(index) is not int or not 0 <= index < _MAX_PCR_SELECT * 8:
                raise MalformedEvidence(FORMAT, f"invalid PCR index {index!r}")
            if not isinstance(value, bytes) or len(value) != size:
                raise MalformedEvidence(
                    FORMAT,
                    f"PCR {hash_name(hash_alg)}/{index} must be a {size}-byte string",
                )
            values[(hash_alg, index)] = value
    return values


def _certificates(item: Any) -> tuple[x509.Certificate, ...]:
    if not isinstance(item, list) or not item:
        raise MalformedEvidence(FORMAT, "'ak-certificates' must be a non-empty array")
    certificates = []
    for position, der in enumerate(item):
        if not isinstance(der, bytes):
            raise MalformedEvidence(FORMAT, f"'ak-certificates'[{position}] must be bytes")
        certificates.append(
            load_certificate(der, format=FORMAT, what=f"'ak-certificates'[{position}]")
        )
    return tuple(certificates)


def parse(data: bytes) -> TpmEvidence:
    """Parse a CMW record (or bare container map) of attestnet TPM evidence."""
    container = cmw.decode_cbor_strict(_container_bytes(bytes(data)), FORMAT)
    if not isinstance(container, dict):
        raise MalformedEvidence(FORMAT, "the container must be a CBOR map")
    unknown = set(container) - _CONTAINER_KEYS
    if unknown:
        raise MalformedEvidence(FORMAT, f"unknown container fields {sorted(map(str, unknown))}")
    attest = parse_attest(_bytes_field(container, "quote"))
    attest.quote  # noqa: B018 -- raises MalformedEvidence unless the type is quote
    certificates: tuple[x509.Certificate, ...] = ()
    if "ak-certificates" in container:
        certificates = _certificates(container["ak-certificates"])
    return TpmEvidence(
        attest=attest,
        signature=parse_signature(_bytes_field(container, "signature")),
        pcr_values=_pcr_values(container.get("pcrs")),
        ak_public=parse_public(_bytes_field(container, "ak-public")),
        ak_certificates=certificates,
    )


def looks_like(data: bytes) -> bool:
    """Return True for a CBOR CMW record whose type is `MEDIA_TYPE`."""
    return data[:1] in (b"\x82", b"\x83") and data[1 : 1 + len(_MEDIA_TYPE_PREFIX)] == (
        _MEDIA_TYPE_PREFIX
    )


# --- verification --------------------------------------------------------------------

# TCG EK credential profile: TPM identity attributes in a subjectAltName directoryName.
_OID_TPM_MANUFACTURER = x509.ObjectIdentifier("2.23.133.2.1")
_OID_TPM_MODEL = x509.ObjectIdentifier("2.23.133.2.2")
_OID_TPM_VERSION = x509.ObjectIdentifier("2.23.133.2.3")
_AK_REQUIRED = (
    ATTR_RESTRICTED | ATTR_SIGN | ATTR_FIXED_TPM | ATTR_FIXED_PARENT | ATTR_SENSITIVE_DATA_ORIGIN
)


def _check_ak_attributes(ak: TpmPublic) -> None:
    if not ak.has_attributes(_AK_REQUIRED) or ak.object_attributes & ATTR_DECRYPT:
        raise VerificationError(
            "ak attributes",
            "the AK must be a restricted, fixedTPM signing key, or it could sign forged quotes",
            claim="objectAttributes",
            expected=f"{_AK_REQUIRED:#010x} set, decrypt clear",
            actual=f"{ak.object_attributes:#010x}",
        )


def _tpm_identity(certificate: x509.Certificate) -> dict[str, str]:
    """Read TPM manufacturer, model and version from a certificate's subjectAltName."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return {}
    labels = {
        _OID_TPM_MANUFACTURER: "tpm_manufacturer",
        _OID_TPM_MODEL: "tpm_model",
        _OID_TPM_VERSION: "tpm_version",
    }
    identity: dict[str, str] = {}
    for name in san.value.get_values_for_type(x509.DirectoryName):
        for attribute in name:
            if attribute.oid in labels:
                identity[labels[attribute.oid]] = str(attribute.value)
    return identity


def _instance_id(evidence: TpmEvidence, pinned: bool) -> bytes:
    """Return SHA-256 of the EK's SPKI from the AK certificate, else of the AK's SPKI."""
    if not pinned and evidence.ak_certificates:
        names = evidence.ak_certificates[0].subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if names:
            text = str(names[0].value)
            if re.fullmatch(r"[0-9a-f]{64}", text) is None:
                raise VerificationError(
                    "instance id",
                    "the AK certificate's subject serialNumber is not a SHA-256 of the EK",
                    claim="subject.serialNumber",
                    expected="64 lowercase hex digits",
                    actual=text,
                )
            return bytes.fromhex(text)
    return hashlib.sha256(public_key_der(evidence.ak_public.public_key())).digest()


def _authenticate_ak(
    evidence: TpmEvidence,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None,
    result: VerifiedEvidence,
) -> bool:
    """Check the AK against the anchors; return True when it is a pinned key."""
    ak_der = public_key_der(evidence.ak_public.public_key())
    if any(public_key_der(key) == ak_der for key in anchors.public_keys):
        result.passed("ak pinned key", "the AK public key is a configured trust anchor")
        return True
    if not evidence.ak_certificates:
        raise ChainError(
            "ak pinned key",
            "the evidence has no AK certificate and the AK public key is not a trust anchor",
            claim="ak-public",
            expected="a pinned AK public key or an AK certificate chain",
            actual=hashlib.sha256(ak_der).hexdigest(),
        )
    leaf, *intermediates = evidence.ak_certificates
    path = verify_chain(leaf, anchors, at, collateral, intermediates, format=FORMAT)
    result.passed(
        "ak certificate chain", f"{subject_text(leaf)} chains to {subject_text(path[-1])}"
    )
    if public_key_der(leaf.public_key()) != ak_der:
        raise VerificationError(
            "ak certificate key",
            "the AK certificate certifies a different key than the AK public area",
            claim="subjectPublicKeyInfo",
            expected=hashlib.sha256(ak_der).hexdigest(),
            actual=hashlib.sha256(public_key_der(leaf.public_key())).hexdigest(),
        )
    result.passed("ak certificate key", "the AK certificate's key equals the AK public area")
    return False


def _check_pcr_coverage(evidence: TpmEvidence) -> None:
    quoted = {
        (bank.hash_alg, index) for bank in evidence.attest.quote.pcr_select for index in bank.pcrs
    }
    extra = sorted(set(evidence.pcr_values) - quoted)
    if extra:
        hash_alg, index = extra[0]
        raise VerificationError(
            "pcr digest",
            "a PCR value is supplied that the quote does not cover",
            claim=f"pcr/{hash_name(hash_alg)}/{index}",
            expected="only quoted PCRs",
            actual=f"{len(extra)} unquoted PCR values",
        )


def _claims(evidence: TpmEvidence, pinned: bool, identity: dict[str, str]) -> dict[str, Any]:
    attest = evidence.attest
    quote = attest.quote
    claims: dict[str, Any] = {
        "type": "quote",
        "qualified_signer": attest.qualified_signer.hex(),
        "extra_data": attest.extra_data.hex(),
        "clock": attest.clock_info.clock,
        "reset_count": attest.clock_info.reset_count,
        "restart_count": attest.clock_info.restart_count,
        "safe": attest.clock_info.safe,
        "firmware_version": f"{attest.firmware_version:016x}",
        "pcr_select": {bank.bank: list(bank.pcrs) for bank in quote.pcr_select},
        "pcr_digest": quote.pcr_digest.hex(),
        "signature_scheme": evidence.signature.name,
        "ak_name": evidence.ak_public.name().hex(),
        "ak_endorsement": "pinned key" if pinned else "certificate",
    }
    if not pinned and evidence.ak_certificates:
        claims["ak_certificate_subject"] = evidence.ak_certificates[0].subject.rfc4514_string()
    claims.update(identity)
    # swtpm writes "swtpm" as the TPM model of the EK certificates it creates.
    claims["swtpm"] = identity.get("tpm_model") == "swtpm"
    return claims


def verify(
    data: bytes,
    *,
    anchors: TrustAnchors,
    at: datetime,
    collateral: Collateral | None = None,
) -> VerifiedEvidence:
    """Verify attestnet TPM quote evidence (see `TpmEvidence`) at time `at`.

    The checks, in order:

    1. The AK public key is a pinned trust anchor, or its certificate chains to
       `anchors` and certifies the AK public area.
    2. The AK is a restricted, fixedTPM signing key.
    3. The quote signature verifies with the AK.
    4. Only quoted PCR values are supplied, and pcrDigest is their digest.

    `nonce` is extraData. `instance_id` is the SHA-256 of the EK's
    SubjectPublicKeyInfo DER as the AK certificate's subject serialNumber names
    it, or, for a pinned AK or a certificate without it, SHA-256 of the AK's
    SubjectPublicKeyInfo DER.
    """
    evidence = parse(data)
    result = VerifiedEvidence(format=FORMAT, verified_at=at, claims={})

    pinned = _authenticate_ak(evidence, anchors, at, collateral, result)
    _check_ak_attributes(evidence.ak_public)
    result.passed("ak attributes", f"objectAttributes {evidence.ak_public.object_attributes:#010x}")

    ak_key = evidence.ak_public.public_key()
    verify_quote_signature(evidence.attest.raw, evidence.signature, ak_key)
    result.passed("quote signature", f"{evidence.signature.name} by the AK")

    _check_pcr_coverage(evidence)
    check_pcr_digest(evidence.attest, evidence.pcr_values, evidence.signature.hash_alg)
    result.passed("pcr digest", "pcrDigest equals the digest of the supplied PCR values")

    identity = {}
    if not pinned and evidence.ak_certificates:
        identity = _tpm_identity(evidence.ak_certificates[0])
    result.claims = _claims(evidence, pinned, identity)
    result.measurements = {
        f"pcr/{hash_name(hash_alg)}/{index}": value
        for (hash_alg, index), value in sorted(evidence.pcr_values.items())
    }
    result.nonce = evidence.attest.extra_data
    result.instance_id = _instance_id(evidence, pinned)
    result.tcb = {"firmware_version": evidence.attest.firmware_version}
    result.debug = None
    result.simulated = False
    result.signer = ak_key
    return result
