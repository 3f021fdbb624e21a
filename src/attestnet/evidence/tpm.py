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
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestnet.errors import MalformedEvidence, VerificationError
from attestnet.evidence.signatures import Scheme, verify_signature

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
    "TPM_GENERATED_VALUE",
    "TPM_ST_ATTEST_CERTIFY",
    "TPM_ST_ATTEST_QUOTE",
    "Attest",
    "CertifyInfo",
    "ClockInfo",
    "PcrSelection",
    "QuoteInfo",
    "TpmPublic",
    "TpmSignature",
    "check_pcr_digest",
    "hash_name",
    "parse_attest",
    "parse_public",
    "parse_signature",
    "pcr_digest",
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

    `scheme` and `scheme_hash` are the key's signing scheme (ALG_NULL and 0 when
    the key has none); `curve` is the TPM_ECC_CURVE of an ECC key, 0 for RSA.
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
    of the rest; a TPMT_PUBLIC starts with its type (0x0001 or 0x0023), which can
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
