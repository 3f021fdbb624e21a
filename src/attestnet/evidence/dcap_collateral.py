"""Intel DCAP collateral: PCK certificate extensions, TCB info, QE identity, CRLs.

The collateral of a DCAP quote is the signed TCB info for the platform's FMSPC, the
signed QE identity, the issuer chain of both (Intel SGX TCB Signing -> Intel SGX
Root CA) and the CRLs of the PCK chain. Two shapes are accepted in
`Collateral.documents`:

- one object with the keys that the Intel QVL and dcap-qvl call `QuoteCollateralV3`
  (`tcb_info` and `qe_identity` as JSON text, `tcb_info_signature` and
  `qe_identity_signature` as hex r||s, `tcb_info_issuer_chain` and
  `qe_identity_issuer_chain` and `pck_crl_issuer_chain` as PEM, `pck_crl` and
  `root_ca_crl` as hex DER);
- the Intel PCS responses as they are served: `{"tcbInfo": {...}, "signature": hex}`
  and `{"enclaveIdentity": {...}, "signature": hex}`, either parsed or as the raw
  JSON text, with the issuer chain and the CRLs in `Collateral.certificates` and
  `Collateral.crls`.

Every collateral signature is ECDSA P-256 with SHA-256 over the exact JSON text of
the `tcbInfo` or `enclaveIdentity` member. The TCB level rules follow the Intel
SGX/TDX DCAP Quote Verification Library: the first level whose every component is
met gives the status, and the TDX module and QE identity statuses can lower it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography import x509

from attestnet.errors import MalformedEvidence, VerificationError
from attestnet.evidence.x509chain import check_crl_fields, load_pem_certificates

__all__ = [
    "SGX_EXTENSION_OID",
    "DcapCollateral",
    "PckExtensions",
    "SignedDocument",
    "TcbMatch",
    "converge_status",
    "gather_collateral",
    "json_member_text",
    "parse_pck_extensions",
    "parse_time",
    "platform_tcb_match",
    "qe_identity_match",
    "tdx_module_match",
]

SGX_EXTENSION_OID = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
_SGX_OID_PREFIX = "1.2.840.113741.1.13.1."

# Statuses that Intel's TCB info and QE identity use, from best to worst.
TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
)


def _collateral_error(message: str, **kwargs: Any) -> VerificationError:
    return VerificationError("collateral", message, **kwargs)


# --- PCK certificate SGX extension -------------------------------------------------


@dataclass(frozen=True)
class PckExtensions:
    """The SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1)."""

    ppid: bytes
    tcb_components: tuple[int, ...]  # SGX TCB components 1..16
    pce_svn: int
    cpu_svn: bytes
    pce_id: bytes
    fmspc: bytes
    sgx_type: int


def _der_items(data: bytes, where: str) -> list[tuple[int, bytes]]:
    """Split DER content into (tag, value) pairs (single-byte tags, as the SGX extension uses)."""
    items: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise _collateral_error(f"PCK SGX extension: truncated DER in {where}")
        tag = data[offset]
        length = data[offset + 1]
        offset += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or offset + count > len(data):
                raise _collateral_error(f"PCK SGX extension: bad DER length in {where}")
            length = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if offset + length > len(data):
            raise _collateral_error(f"PCK SGX extension: truncated DER value in {where}")
        items.append((tag, data[offset : offset + length]))
        offset += length
    return items


def _der_oid(value: bytes) -> str:
    if not value:
        raise _collateral_error("PCK SGX extension: empty OID")
    parts = [value[0] // 40, value[0] % 40]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))


def _der_named_values(data: bytes, where: str) -> dict[str, tuple[int, bytes]]:
    """Parse a SEQUENCE OF SEQUENCE {OID, value} into {oid: (tag, value)}."""
    named: dict[str, tuple[int, bytes]] = {}
    for tag, body in _der_items(data, where):
        if tag != 0x30:
            raise _collateral_error(f"PCK SGX extension: expected SEQUENCE in {where}")
        pair = _der_items(body, where)
        if len(pair) != 2 or pair[0][0] != 0x06:
            raise _collateral_error(f"PCK SGX extension: expected OID and value in {where}")
        named[_der_oid(pair[0][1])] = pair[1]
    return named


def _der_int(entry: tuple[int, bytes] | None, name: str) -> int:
    if entry is None or entry[0] not in (0x02, 0x0A) or not entry[1]:
        raise _collateral_error(f"PCK SGX extension: {name} is missing or not an INTEGER")
    return int.from_bytes(entry[1], "big", signed=True)


def _der_octets(entry: tuple[int, bytes] | None, name: str, size: int) -> bytes:
    if entry is None or entry[0] != 0x04 or len(entry[1]) != size:
        raise _collateral_error(
            f"PCK SGX extension: {name} is missing or not a {size}-byte OCTET STRING"
        )
    return entry[1]


def parse_pck_extensions(cert: x509.Certificate) -> PckExtensions:
    """Read FMSPC, PCE-ID, PPID and the TCB components from a PCK certificate."""
    try:
        extension = cert.extensions.get_extension_for_oid(SGX_EXTENSION_OID)
    except x509.ExtensionNotFound:
        raise _collateral_error(
            "PCK certificate has no SGX extension", claim=SGX_EXTENSION_OID.dotted_string
        ) from None
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise _collateral_error("PCK SGX extension has an unexpected type")
    return _parse_sgx_extension(value.value)


@lru_cache(maxsize=64)
def _parse_sgx_extension(der: bytes) -> PckExtensions:
    """Decode the SGX extension value; cached because a platform's PCK certificate repeats."""
    outer = _der_items(der, "extension")
    if len(outer) != 1 or outer[0][0] != 0x30:
        raise _collateral_error("PCK SGX extension is not one SEQUENCE")
    top = _der_named_values(outer[0][1], "extension")
    p = _SGX_OID_PREFIX

    tcb_entry = top.get(p + "2")
    if tcb_entry is None or tcb_entry[0] != 0x30:
        raise _collateral_error("PCK SGX extension: TCB sequence is missing")
    tcb = _der_named_values(tcb_entry[1], "TCB")
    components = tuple(
        _der_int(tcb.get(f"{p}2.{index}"), f"sgxTcbComp{index:02d}Svn") for index in range(1, 17)
    )
    return PckExtensions(
        ppid=_der_octets(top.get(p + "1"), "PPID", 16),
        tcb_components=components,
        pce_svn=_der_int(tcb.get(p + "2.17"), "pcesvn"),
        cpu_svn=_der_octets(tcb.get(p + "2.18"), "cpusvn", 16),
        pce_id=_der_octets(top.get(p + "3"), "PCE-ID", 2),
        fmspc=_der_octets(top.get(p + "4"), "FMSPC", 6),
        sgx_type=_der_int(top.get(p + "5"), "SGX Type"),
    )


# --- JSON access --------------------------------------------------------------------


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _collateral_error(f"{where}: missing field {key!r}")
    value = obj[key]
    # bool is an int in Python; no collateral field that wants an int takes a bool.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _collateral_error(f"{where}: field {key!r} is not a {kind.__name__}")
    return value


def _hex_field(obj: Any, key: str, where: str, size: int | None = None) -> bytes:
    text = _field(obj, key, str, where)
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise _collateral_error(f"{where}: field {key!r} is not hex") from None
    if size is not None and len(value) != size:
        raise _collateral_error(
            f"{where}: field {key!r} has the wrong length", expected=size, actual=len(value)
        )
    return value


def parse_time(text: str, where: str) -> datetime:
    """Parse an RFC 3339 UTC time such as 2025-06-19T10:16:03Z."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _collateral_error(f"{where}: invalid time {text!r}") from None
    if value.tzinfo is None:
        raise _collateral_error(f"{where}: time {text!r} has no time zone")
    return value


def json_member_text(text: str, member: str) -> str:
    """Return the exact source text of a top-level member of a JSON object.

    Intel signs the bytes of the `tcbInfo` / `enclaveIdentity` value as served, so the
    value is cut out of the document text instead of being serialised again.
    """
    decoder = json.JSONDecoder()
    position = 0

    def skip_space(index: int) -> int:
        while index < len(text) and text[index] in " \t\r\n":
            index += 1
        return index

    try:
        position = skip_space(position)
        if text[position] != "{":
            raise _collateral_error(f"collateral JSON is not an object (looking for {member!r})")
        position += 1
        while True:
            position = skip_space(position)
            key, position = decoder.raw_decode(text, position)
            position = skip_space(position)
            if text[position] != ":":
                raise _collateral_error("collateral JSON: expected ':'")
            start = skip_space(position + 1)
            _, end = decoder.raw_decode(text, start)
            if key == member:
                return text[start:end]
            position = skip_space(end)
            if text[position] != ",":
                break
            position += 1
    except (IndexError, ValueError):
        raise _collateral_error(f"collateral JSON is invalid (looking for {member!r})") from None
    raise _collateral_error(f"collateral JSON has no member {member!r}")


# --- Gathering the collateral -----------------------------------------------------------


@dataclass(frozen=True)
class SignedDocument:
    """A TCB info or QE identity with the exact bytes its signature covers."""

    source: str
    body: dict[str, Any]
    signed_text: bytes
    signature: bytes
    issuer_chain: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class DcapCollateral:
    """The collateral pieces of one DCAP verification, gathered from `Collateral`."""

    tcb_infos: tuple[SignedDocument, ...]
    qe_identities: tuple[SignedDocument, ...]
    certificates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]


def _pem_chain(obj: dict[str, Any], key: str, where: str) -> tuple[x509.Certificate, ...]:
    text = _field(obj, key, str, where)
    try:
        return load_pem_certificates(text.encode(), format="dcap", what=f"{where}: {key}")
    except MalformedEvidence:
        raise _collateral_error(f"{where}: {key} is not a PEM certificate chain") from None


# The parsed collateral is cached by its text: the same TCB info, QE identity and
# CRLs serve every quote of a platform until Intel publishes new ones. The cached
# values are shared and must not be modified; the signatures, issue and next-update
# times are still checked on every verification.
@lru_cache(maxsize=64)
def _parse_hex_crl(text: str) -> x509.CertificateRevocationList:
    crl = x509.load_der_x509_crl(bytes.fromhex(text))
    check_crl_fields(crl, format="dcap", what="CRL")
    return crl


def _hex_crl(obj: dict[str, Any], key: str, where: str) -> x509.CertificateRevocationList:
    text = _field(obj, key, str, where)
    try:
        return _parse_hex_crl(text)
    except (ValueError, MalformedEvidence):
        raise _collateral_error(f"{where}: {key} is not a hex DER CRL") from None


@lru_cache(maxsize=64)
def _parse_signed_text(text: str) -> tuple[Any, bytes]:
    return json.loads(text), text.encode()


def _signed_from_text(
    text: str, signature_hex: str, source: str, chain: tuple[x509.Certificate, ...]
) -> SignedDocument:
    try:
        body, signed_text = _parse_signed_text(text)
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise _collateral_error(f"{source}: invalid JSON or signature hex") from None
    if not isinstance(body, dict):
        raise _collateral_error(f"{source}: signed body is not a JSON object")
    return SignedDocument(source, body, signed_text, signature, chain)


def _from_quote_collateral(name: str, document: dict[str, Any]) -> DcapCollateral:
    tcb_chain = _pem_chain(document, "tcb_info_issuer_chain", name)
    qe_chain = _pem_chain(document, "qe_identity_issuer_chain", name)
    tcb_info = _signed_from_text(
        _field(document, "tcb_info", str, name),
        _field(document, "tcb_info_signature", str, name),
        f"{name}: tcb_info",
        tcb_chain,
    )
    qe_identity = _signed_from_text(
        _field(document, "qe_identity", str, name),
        _field(document, "qe_identity_signature", str, name),
        f"{name}: qe_identity",
        qe_chain,
    )
    certificates = tcb_chain + qe_chain
    if "pck_crl_issuer_chain" in document:
        certificates += _pem_chain(document, "pck_crl_issuer_chain", name)
    crls = tuple(_hex_crl(document, key, name) for key in ("pck_crl", "root_ca_crl"))
    return DcapCollateral((tcb_info,), (qe_identity,), certificates, crls)


def _from_pcs_response(name: str, document: Any, member: str) -> SignedDocument:
    if isinstance(document, bytes | str):
        text = document.decode() if isinstance(document, bytes) else document
        parsed = json.loads(text)
        member_text = json_member_text(text, member)
    else:
        parsed = document
        # NOTE: a parsed document has lost its source text, so the member is serialised
        # again in the compact form that Intel PCS serves. A PCS response saved with other
        # spacing or key order must be passed as raw text instead.
        member_text = json.dumps(parsed[member], separators=(",", ":"), ensure_ascii=False)
    return _signed_from_text(
        member_text, _field(parsed, "signature", str, name), f"{name}: {member}", ()
    )


def _is_pcs_response(document: Any, member: str) -> bool:
    if isinstance(document, bytes | str):
        return f'"{member}"' in (document.decode() if isinstance(document, bytes) else document)
    return isinstance(document, dict) and member in document


def gather_collateral(
    documents: Sequence[tuple[str, Any]],
    certificates: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
) -> DcapCollateral:
    """Collect TCB infos, QE identities, issuer certificates and CRLs from collateral."""
    tcb_infos: list[SignedDocument] = []
    qe_identities: list[SignedDocument] = []
    all_certificates = list(certificates)
    all_crls = list(crls)
    for name, document in documents:
        if isinstance(document, dict) and "tcb_info" in document:
            part = _from_quote_collateral(name, document)
            tcb_infos += part.tcb_infos
            qe_identities += part.qe_identities
            all_certificates += part.certificates
            all_crls += part.crls
        elif _is_pcs_response(document, "tcbInfo"):
            try:
                tcb_infos.append(_from_pcs_response(name, document, "tcbInfo"))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                raise _collateral_error(f"{name}: invalid TCB info response") from None
        elif _is_pcs_response(document, "enclaveIdentity"):
            try:
                qe_identities.append(_from_pcs_response(name, document, "enclaveIdentity"))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                raise _collateral_error(f"{name}: invalid QE identity response") from None
    return DcapCollateral(
        tuple(tcb_infos), tuple(qe_identities), tuple(all_certificates), tuple(all_crls)
    )


# --- TCB levels ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TcbMatch:
    """The TCB level that a platform, TDX module or QE matched."""

    status: str
    tcb_date: str | None
    advisory_ids: tuple[str, ...]


def _level_result(level: dict[str, Any], where: str) -> TcbMatch:
    status = _field(level, "tcbStatus", str, where)
    if status not in TCB_STATUSES:
        raise _collateral_error(f"{where}: unknown tcbStatus {status!r}")
    advisories = level.get("advisoryIDs", [])
    if not isinstance(advisories, list) or not all(isinstance(a, str) for a in advisories):
        raise _collateral_error(f"{where}: advisoryIDs is not a list of strings")
    date = level.get("tcbDate")
    return TcbMatch(status, date if isinstance(date, str) else None, tuple(advisories))


def _component_svns(tcb: dict[str, Any], key: str, where: str) -> list[int]:
    components = _field(tcb, key, list, where)
    if len(components) != 16:
        raise _collateral_error(f"{where}: {key} must have 16 entries", actual=len(components))
    return [_field(c, "svn", int, f"{where}: {key}") for c in components]


def platform_tcb_match(
    tcb_info: dict[str, Any], pck: PckExtensions, tee_tcb_svn: bytes | None
) -> TcbMatch:
    """Find the first TCB level that the PCK's SGX components, PCE SVN and TEE TCB SVN meet.

    For TDX (`tee_tcb_svn` given) the first two TEE TCB SVN bytes are the TDX module's
    SVN and major version; when the version is not 0 they are appraised against
    `tdxModuleIdentities` instead (see `tdx_module_match`) and skipped here.
    Raises VerificationError "tcb status" when no level matches.
    """
    levels = _field(tcb_info, "tcbLevels", list, "TCB info")
    version = tcb_info.get("version")
    tdx_start = 2 if tee_tcb_svn is not None and tee_tcb_svn[1] != 0 else 0
    for number, level in enumerate(levels):
        where = f"TCB info level {number}"
        tcb = _field(level, "tcb", dict, where)
        if version == 2 and "sgxtcbcomp01svn" in tcb:
            required = [_field(tcb, f"sgxtcbcomp{i:02d}svn", int, where) for i in range(1, 17)]
        else:
            required = _component_svns(tcb, "sgxtcbcomponents", where)
        if any(have < need for have, need in zip(pck.tcb_components, required, strict=True)):
            continue
        if pck.pce_svn < _field(tcb, "pcesvn", int, where):
            continue
        if tee_tcb_svn is not None:
            tdx_required = _component_svns(tcb, "tdxtcbcomponents", where)
            if any(tee_tcb_svn[i] < tdx_required[i] for i in range(tdx_start, 16)):
                continue
        return _level_result(level, where)
    raise VerificationError(
        "tcb status",
        "TCB level not supported: no TCB level in the TCB info is met by this platform",
        claim="sgxtcbcomponents/pcesvn" + ("/tdxtcbcomponents" if tee_tcb_svn else ""),
        expected=f"one of {len(levels)} TCB levels",
        actual=(
            f"components {list(pck.tcb_components)}, pcesvn {pck.pce_svn}"
            + (f", tee_tcb_svn {tee_tcb_svn.hex()}" if tee_tcb_svn is not None else "")
        ),
    )


def _masked_equal(actual: bytes, expected: bytes, mask: bytes) -> bool:
    if not len(actual) == len(expected) == len(mask):
        return False
    return all((a & m) == (e & m) for a, e, m in zip(actual, expected, mask, strict=True))


def _isvsvn_match(levels: list[Any], isvsvn: int, where: str) -> TcbMatch | None:
    for number, level in enumerate(levels):
        tcb = _field(level, "tcb", dict, f"{where} level {number}")
        if isvsvn >= _field(tcb, "isvsvn", int, f"{where} level {number}"):
            return _level_result(level, f"{where} level {number}")
    return None


def tdx_module_match(
    tcb_info: dict[str, Any], *, mr_signer_seam: bytes, seam_attributes: bytes, tee_tcb_svn: bytes
) -> TcbMatch:
    """Check the TDX module's signer and attributes and return its TCB status.

    TEE_TCB_SVN[1] is the module's major version: 0 means the `tdxModule` entry applies
    (no separate status), otherwise the `tdxModuleIdentities` entry "TDX_<version>"
    does, and TEE_TCB_SVN[0] is its ISV SVN.
    """
    version = tee_tcb_svn[1]
    if version == 0:
        identity = _field(tcb_info, "tdxModule", dict, "TCB info")
        where = "TCB info tdxModule"
    else:
        identities = _field(tcb_info, "tdxModuleIdentities", list, "TCB info")
        expected_id = f"TDX_{version:02X}"
        found = [i for i in identities if isinstance(i, dict) and i.get("id") == expected_id]
        if not found:
            raise VerificationError(
                "tdx module identity",
                "TCB info has no identity for this TDX module version",
                claim="tdxModuleIdentities.id",
                expected=expected_id,
                actual=[i.get("id") for i in identities if isinstance(i, dict)],
            )
        identity = found[0]
        where = f"TCB info tdxModuleIdentities {expected_id}"

    expected_signer = _hex_field(identity, "mrsigner", where, 48)
    if mr_signer_seam != expected_signer:
        raise VerificationError(
            "tdx module identity",
            "MRSIGNERSEAM does not match the TCB info",
            claim="mrsignerseam",
            expected=expected_signer,
            actual=mr_signer_seam,
        )
    expected_attributes = _hex_field(identity, "attributes", where, 8)
    mask = _hex_field(identity, "attributesMask", where, 8)
    if not _masked_equal(seam_attributes, expected_attributes, mask):
        raise VerificationError(
            "tdx module identity",
            "SEAM attributes do not match the TCB info under its mask",
            claim="seam_attributes",
            expected=f"{expected_attributes.hex()} under mask {mask.hex()}",
            actual=seam_attributes,
        )
    if version == 0:
        return TcbMatch("UpToDate", None, ())
    levels = _field(identity, "tcbLevels", list, where)
    result = _isvsvn_match(levels, tee_tcb_svn[0], where)
    if result is None:
        raise VerificationError(
            "tcb status",
            "TCB level not supported: the TDX module SVN is below every level",
            claim="tee_tcb_svn[0]",
            expected=f">= the lowest isvsvn of {expected_id}",
            actual=tee_tcb_svn[0],
        )
    return result


def qe_identity_match(
    identity: dict[str, Any],
    *,
    mr_signer: bytes,
    isv_prod_id: int,
    isv_svn: int,
    misc_select: bytes,
    attributes: bytes,
) -> TcbMatch:
    """Check the QE report against the QE identity and return the QE's TCB status.

    An ISV SVN below every level gives "Revoked", as in the Intel QVL.
    """
    where = "QE identity"
    expected_signer = _hex_field(identity, "mrsigner", where, 32)
    if mr_signer != expected_signer:
        raise VerificationError(
            "qe identity",
            "QE MRSIGNER does not match the QE identity",
            claim="mrsigner",
            expected=expected_signer,
            actual=mr_signer,
        )
    expected_product = _field(identity, "isvprodid", int, where)
    if isv_prod_id != expected_product:
        raise VerificationError(
            "qe identity",
            "QE ISVPRODID does not match the QE identity",
            claim="isvprodid",
            expected=expected_product,
            actual=isv_prod_id,
        )
    for name, actual, size in (("miscselect", misc_select, 4), ("attributes", attributes, 16)):
        expected = _hex_field(identity, name, where, size)
        mask = _hex_field(identity, name + "Mask", where, size)
        if not _masked_equal(actual, expected, mask):
            raise VerificationError(
                "qe identity",
                f"QE {name} does not match the QE identity under its mask",
                claim=name,
                expected=f"{expected.hex()} under mask {mask.hex()}",
                actual=actual,
            )
    levels = _field(identity, "tcbLevels", list, where)
    result = _isvsvn_match(levels, isv_svn, where)
    return result if result is not None else TcbMatch("Revoked", None, ())


def converge_status(platform: str, other: str) -> str:
    """Combine the platform's TCB status with the TDX module's or the QE's status.

    A revoked component revokes the whole, and an out-of-date component makes an
    up-to-date platform out of date, keeping "configuration needed" where it applied.
    """
    if other == "Revoked" or platform == "Revoked":
        return "Revoked"
    if other in ("OutOfDate", "OutOfDateConfigurationNeeded"):
        if platform in ("UpToDate", "SWHardeningNeeded", "OutOfDate"):
            return "OutOfDate"
        return "OutOfDateConfigurationNeeded"
    return platform
