"""TPM 2.0 attester: AK quotes over selected PCRs with extraData = binder.

`TpmAttester` talks to a TPM through tpm2-pytss (ESAPI): swtpm in tests and the
demo ("swtpm:host=127.0.0.1,port=N"), the kernel resource manager on real
machines ("device:/dev/tpmrm0"). It keeps one ESAPI context and the AK loaded
between quotes, so one piece of evidence costs one TPM2_Quote while the PCRs do
not change.

The AK is a primary key in the endorsement hierarchy, so the same template gives
the same key after every restart: a restricted signing key, fixedTPM, ECC P-256
with ECDSA-SHA256 by default, or RSA 2048 with RSASSA-SHA256. `enroll_ak` proves
by credential activation that the AK lives in the same TPM as the certified EK,
then issues an AK certificate from a CA whose private key the caller has (the
swtpm local CA in tests and the demo). A verifier may instead pin the AK public key.

The evidence is a CBOR CMW record of media type `MEDIA_TYPE` whose value is the
container that `attestnet.evidence.tpm` documents and verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attestnet.attesters.swtpm import LocalCa
from attestnet.errors import AttestnetError, ConfigError, VerificationError
from attestnet.evidence import cmw
from attestnet.evidence import tpm as tpm_evidence
from attestnet.evidence.model import TrustAnchors
from attestnet.evidence.tpm import (
    ATTR_DECRYPT,
    ATTR_FIXED_PARENT,
    ATTR_FIXED_TPM,
    ATTR_RESTRICTED,
    ATTR_SENSITIVE_DATA_ORIGIN,
    ATTR_SIGN,
    MEDIA_TYPE,
    PcrSelection,
    TpmPublic,
)
from attestnet.evidence.x509chain import public_key_der, verify_chain

__all__ = [
    "DEVICE_TCTI",
    "MEDIA_TYPE",
    "TpmAttester",
    "TpmAttesterError",
    "enroll_ak",
    "issue_ak_certificate",
    "parse_pcr_selection",
]

logger = logging.getLogger(__name__)

DEVICE_TCTI = "device:/dev/tpmrm0"

# The swtpm RSA 2048 EK certificate lives in the TCG low-range NV index 0x01c00002.
_EK_TYPE = "EK-RSA2048"
_AK_ATTRIBUTES = "restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth"
_AK_TEMPLATES = {"ecc": "ecc256:ecdsa-sha256:null", "rsa": "rsa2048:rsassa-sha256:null"}
_AK_REQUIRED = (
    ATTR_RESTRICTED | ATTR_SIGN | ATTR_FIXED_TPM | ATTR_FIXED_PARENT | ATTR_SENSITIVE_DATA_ORIGIN
)
_MAX_EXTRA_DATA = 64  # TPM2B_DATA is sized for a TPMT_HA (2 + 64 bytes); binders are 32
_QUOTE_ATTEMPTS = 3

# TCG EK credential profile: the TPM identity attributes in subjectAltName directoryName.
OID_TPM_MANUFACTURER = x509.ObjectIdentifier("2.23.133.2.1")
OID_TPM_MODEL = x509.ObjectIdentifier("2.23.133.2.2")
OID_TPM_VERSION = x509.ObjectIdentifier("2.23.133.2.3")

_BANKS = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D}


class TpmAttesterError(AttestnetError):
    """The TPM failed a command, or its keys or certificates are not usable."""


def parse_pcr_selection(text: str) -> tuple[PcrSelection, ...]:
    """Parse a PCR selection such as "sha256:0-7" or "sha1:0,1+sha256:0-7,10".

    Banks are separated by "+", indices by ",", and "a-b" is an inclusive range.
    """
    selections: list[PcrSelection] = []
    for part in text.split("+"):
        bank, sep, indices = part.strip().partition(":")
        if not sep or bank not in _BANKS:
            raise ConfigError(
                f"invalid PCR selection {text!r}: expected BANK:INDICES with BANK one of "
                f"{', '.join(_BANKS)}"
            )
        pcrs: set[int] = set()
        for item in indices.split(","):
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
            if match is None:
                raise ConfigError(f"invalid PCR index {item!r} in {text!r}")
            first = int(match.group(1))
            last = int(match.group(2) or first)
            if first > last or last > 23:
                raise ConfigError(f"invalid PCR range {item!r} in {text!r}: use 0..23")
            pcrs.update(range(first, last + 1))
        selections.append(PcrSelection(_BANKS[bank], tuple(sorted(pcrs))))
    return tuple(selections)


def _tpm_error(action: str, exc: Exception) -> TpmAttesterError:
    return TpmAttesterError(f"TPM {action} failed: {exc}")


class TpmAttester:
    """Produce TPM quote evidence bound to a binder; use it as a context manager.

    `tcti` is a tpm2-tss TCTI string (default `DEVICE_TCTI`). `pcrs` selects the
    quoted PCRs. `ak_certificates` is the AK certificate chain (AK certificate
    first) that goes into the evidence. Leave it empty when verifiers pin the AK
    public key, or call `enroll_ak` to obtain it.
    """

    def __init__(
        self,
        tcti: str = DEVICE_TCTI,
        *,
        pcrs: str | Sequence[PcrSelection] = "sha256:0-7",
        ak_algorithm: Literal["ecc", "rsa"] = "ecc",
        ak_certificates: Sequence[x509.Certificate] = (),
    ) -> None:
        # Imported here so that the verifier side never needs the tpm2-tss libraries.
        from tpm2_pytss import ESAPI, TSS2_Exception

        if ak_algorithm not in _AK_TEMPLATES:
            raise ConfigError(f"invalid AK algorithm {ak_algorithm!r}: use 'ecc' or 'rsa'")
        self.selection = parse_pcr_selection(pcrs) if isinstance(pcrs, str) else tuple(pcrs)
        self.ak_algorithm = ak_algorithm
        self._tss_error = TSS2_Exception
        try:
            self._esapi: Any = ESAPI(tcti)
        except TSS2_Exception as exc:
            raise TpmAttesterError(f"cannot open the TPM through TCTI {tcti!r}: {exc}") from None
        self.tcti = tcti
        try:
            self._ak_handle, self.ak_public = self._create_ak()
        except BaseException:
            self._esapi.close()
            raise
        self._pcr_values: dict[tuple[int, int], bytes] | None = None
        self._ak_certificates: tuple[x509.Certificate, ...] = ()
        self._container_static: dict[str, Any] = {}
        self.set_ak_certificates(ak_certificates)

    # --- keys ---------------------------------------------------------------------

    def _create_ak(self) -> tuple[Any, TpmPublic]:
        from tpm2_pytss import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE
        from tpm2_pytss.constants import ESYS_TR

        template = TPM2B_PUBLIC.parse(
            _AK_TEMPLATES[self.ak_algorithm], objectAttributes=_AK_ATTRIBUTES
        )
        try:
            handle, public, *_ = self._esapi.create_primary(
                TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT
            )
        except self._tss_error as exc:
            raise _tpm_error(
                "AK creation (CreatePrimary in the endorsement hierarchy)", exc
            ) from exc
        return handle, tpm_evidence.parse_public(public.publicArea.marshal())

    def ek_certificate_and_public(self) -> tuple[x509.Certificate, TpmPublic]:
        """Read the RSA 2048 EK certificate from NV and recreate the EK's public area.

        Raises TpmAttesterError when the TPM has no EK certificate or the EK it
        creates from the TCG template does not match the certificate's key.
        """
        from tpm2_pytss.utils import NoSuchIndex, NVReadEK, create_ek_template

        try:
            certificate_der, template = create_ek_template(_EK_TYPE, NVReadEK(self._esapi))
        except (NoSuchIndex, self._tss_error) as exc:
            raise _tpm_error("EK certificate read", exc) from exc
        if certificate_der is None:
            raise TpmAttesterError("the TPM has no RSA 2048 EK certificate in NV 0x01c00002")
        # Some TPMs keep the EK certificate in a larger NV area with padding after
        # it, and load_der_x509_certificate rejects trailing bytes.
        certificate = x509.load_der_x509_certificate(_first_der_element(certificate_der))
        handle, ek_public = self._create_ek(template)
        self._esapi.flush_context(handle)
        if public_key_der(ek_public.public_key()) != public_key_der(certificate.public_key()):
            raise TpmAttesterError(
                "the EK created from the TCG template differs from the EK certificate's key"
            )
        return certificate, ek_public

    def _create_ek(self, template: Any) -> tuple[Any, TpmPublic]:
        from tpm2_pytss import TPM2B_SENSITIVE_CREATE
        from tpm2_pytss.constants import ESYS_TR

        try:
            handle, public, *_ = self._esapi.create_primary(
                TPM2B_SENSITIVE_CREATE(), template, ESYS_TR.ENDORSEMENT
            )
        except self._tss_error as exc:
            raise _tpm_error("EK creation", exc) from exc
        return handle, tpm_evidence.parse_public(public.publicArea.marshal())

    def activate_credential(self, credential_blob: bytes, secret: bytes) -> bytes:
        """Run TPM2_ActivateCredential with the AK and the EK; return the credential.

        `credential_blob` is a marshalled TPM2B_ID_OBJECT and `secret` a marshalled
        TPM2B_ENCRYPTED_SECRET, as MakeCredential produces them for the EK and the
        AK's name. The EK's policy is PolicySecret(TPM_RH_ENDORSEMENT).
        """
        from tpm2_pytss import TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT, TPMT_SYM_DEF
        from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_SE
        from tpm2_pytss.utils import NVReadEK, create_ek_template

        blob, _ = TPM2B_ID_OBJECT.unmarshal(credential_blob)
        encrypted_secret, _ = TPM2B_ENCRYPTED_SECRET.unmarshal(secret)
        _, template = create_ek_template(_EK_TYPE, NVReadEK(self._esapi))
        ek_handle, _ = self._create_ek(template)
        session = None
        try:
            session = self._esapi.start_auth_session(
                ESYS_TR.NONE,
                ESYS_TR.NONE,
                TPM2_SE.POLICY,
                TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL),
                TPM2_ALG.SHA256,
            )
            self._esapi.policy_secret(ESYS_TR.ENDORSEMENT, session)
            credential = self._esapi.activate_credential(
                self._ak_handle, ek_handle, blob, encrypted_secret, session2=session
            )
        except self._tss_error as exc:
            raise _tpm_error("ActivateCredential", exc) from exc
        finally:
            if session is not None:
                self._esapi.flush_context(session)
            self._esapi.flush_context(ek_handle)
        return bytes(credential)

    def set_ak_certificates(self, certificates: Sequence[x509.Certificate]) -> None:
        """Set the AK certificate chain (AK certificate first) that evidence carries."""
        self._ak_certificates = tuple(certificates)
        self._container_static = {"ak-public": self.ak_public.raw}
        if certificates:
            self._container_static["ak-certificates"] = [
                c.public_bytes(Encoding.DER) for c in certificates
            ]

    @property
    def ak_certificates(self) -> tuple[x509.Certificate, ...]:
        return self._ak_certificates

    # --- PCRs ---------------------------------------------------------------------

    def read_pcrs(self) -> dict[tuple[int, int], bytes]:
        """Read the selected PCRs, keyed by (bank TPM_ALG_ID, index)."""
        from tpm2_pytss import TPML_PCR_SELECTION

        values: dict[tuple[int, int], bytes] = {}
        for bank in self.selection:
            # TPM2_PCR_Read returns at most 8 digests per call, so read 8 at a time.
            for start in range(0, len(bank.pcrs), 8):
                chunk = bank.pcrs[start : start + 8]
                text = f"{tpm_evidence.hash_name(bank.hash_alg)}:{','.join(map(str, chunk))}"
                try:
                    _, selected, digests = self._esapi.pcr_read(TPML_PCR_SELECTION.parse(text))
                except self._tss_error as exc:
                    raise _tpm_error("PCR_Read", exc) from exc
                returned = tpm_evidence.parse_pcr_selection_list(selected.marshal())
                indices = [i for s in returned for i in s.pcrs]
                if indices != list(chunk):
                    raise TpmAttesterError(
                        f"the TPM returned PCRs {indices} for {text}; is the bank active?"
                    )
                for index, digest in zip(indices, digests, strict=True):
                    values[(bank.hash_alg, index)] = bytes(digest)
        return values

    def extend_pcr(self, index: int, digest: bytes, bank: str = "sha256") -> None:
        """Extend PCR `index` of `bank` with `digest` (for example to show a changed agent)."""
        from tpm2_pytss import TPML_DIGEST_VALUES, TPMT_HA, TPMU_HA
        from tpm2_pytss.constants import ESYS_TR, TPM2_ALG

        if bank not in _BANKS:
            raise ConfigError(f"invalid PCR bank {bank!r}: use one of {', '.join(_BANKS)}")
        if not 0 <= index <= 23:
            raise ConfigError(f"invalid PCR index {index}: use 0..23")
        algorithm = TPM2_ALG(_BANKS[bank])
        size = hashlib.new(bank).digest_size
        if len(digest) != size:
            raise ConfigError(f"a {bank} PCR digest is {size} bytes, got {len(digest)}")
        values = TPML_DIGEST_VALUES([TPMT_HA(hashAlg=algorithm, digest=TPMU_HA(**{bank: digest}))])
        try:
            self._esapi.pcr_extend(ESYS_TR(index), values)
        except self._tss_error as exc:
            raise _tpm_error(f"PCR_Extend of PCR {index}", exc) from exc

    # --- evidence -----------------------------------------------------------------

    def quote(self, extra_data: bytes) -> tuple[bytes, bytes]:
        """Return (TPMS_ATTEST, TPMT_SIGNATURE) of an AK quote over the selected PCRs."""
        from tpm2_pytss import TPML_PCR_SELECTION

        if len(extra_data) > _MAX_EXTRA_DATA:
            raise ConfigError(
                f"extraData is at most {_MAX_EXTRA_DATA} bytes, got {len(extra_data)}"
            )
        selection, _ = TPML_PCR_SELECTION.unmarshal(_selection_bytes(self.selection))
        try:
            attest, signature = self._esapi.quote(self._ak_handle, selection, extra_data)
        except self._tss_error as exc:
            raise _tpm_error("Quote", exc) from exc
        return bytes(attest), signature.marshal()

    def evidence(self, binder: bytes) -> bytes:
        """Quote the selected PCRs with extraData = `binder`; return a CBOR CMW record.

        The PCR values are read again only when the quoted pcrDigest differs from
        the digest of the values read last, so a quote whose PCRs did not change
        costs one TPM command.
        """
        for _ in range(_QUOTE_ATTEMPTS):
            attest_bytes, signature_bytes = self.quote(binder)
            attest = tpm_evidence.parse_attest(attest_bytes)
            hash_alg = tpm_evidence.parse_signature(signature_bytes).hash_alg
            if self._pcr_values is None or not _digest_matches(attest, self._pcr_values, hash_alg):
                self._pcr_values = self.read_pcrs()
                if not _digest_matches(attest, self._pcr_values, hash_alg):
                    continue  # a PCR changed between the quote and the read
            return cmw.encode_record(
                MEDIA_TYPE,
                tpm_evidence.encode_container(
                    attest_bytes,
                    signature_bytes,
                    self._pcr_values,
                    self._container_static["ak-public"],
                    self._container_static.get("ak-certificates", ()),
                ),
            )
        raise TpmAttesterError(f"the PCRs kept changing during {_QUOTE_ATTEMPTS} quote attempts")

    # --- lifetime -----------------------------------------------------------------

    def close(self) -> None:
        if self._esapi is None:
            return
        try:
            self._esapi.flush_context(self._ak_handle)
        except self._tss_error as exc:
            logger.warning("flushing the AK failed: %s", exc)
        self._esapi.close()
        self._esapi = None

    def __enter__(self) -> TpmAttester:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _digest_matches(
    attest: tpm_evidence.Attest, values: dict[tuple[int, int], bytes], hash_alg: int
) -> bool:
    quote = attest.quote
    try:
        computed = tpm_evidence.pcr_digest(quote.pcr_select, values, hash_alg)
    except VerificationError:
        return False
    return hmac.compare_digest(computed, quote.pcr_digest)


def _selection_bytes(selection: Sequence[PcrSelection]) -> bytes:
    return len(selection).to_bytes(4, "big") + b"".join(s.to_bytes() for s in selection)


def _first_der_element(data: bytes) -> bytes:
    """Cut a DER SEQUENCE from NV data that may carry padding after it."""
    if len(data) < 2 or data[0] != 0x30:
        raise TpmAttesterError("the EK certificate in NV is not a DER SEQUENCE")
    length = data[1]
    if length < 0x80:
        return data[: 2 + length]
    count = length & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        raise TpmAttesterError("the EK certificate in NV has an invalid DER length")
    return data[: 2 + count + int.from_bytes(data[2 : 2 + count], "big")]


# --- AK enrolment -------------------------------------------------------------------


def _tpm_identity_names(certificate: x509.Certificate) -> list[x509.GeneralName]:
    """Return the directoryName entries of the TPM identity in a certificate's SAN."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    tpm_oids = {OID_TPM_MANUFACTURER, OID_TPM_MODEL, OID_TPM_VERSION}
    return [
        x509.DirectoryName(name)
        for name in san.value.get_values_for_type(x509.DirectoryName)
        if any(attribute.oid in tpm_oids for attribute in name)
    ]


def issue_ak_certificate(
    ak_public: TpmPublic,
    ca: LocalCa,
    *,
    ek_certificate: x509.Certificate,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """Issue an AK certificate signed by `ca`, naming the EK in its subject.

    The subject is CN "attestnet TPM AK" with serialNumber = hex SHA-256 of the
    EK's SubjectPublicKeyInfo DER (the verifier's instance_id). The TPM identity
    attributes of the EK certificate's subjectAltName (manufacturer, model,
    version) are copied, as the TCG profiles for AK certificates do. Call it only
    after credential activation has proven that the AK and the EK share a TPM
    (`enroll_ak` does both). Validity defaults to one hour ago until 365 days on.
    """
    now = datetime.now(UTC)
    not_before = not_before or now - timedelta(hours=1)
    not_after = not_after or now + timedelta(days=365)
    ek_id = hashlib.sha256(public_key_der(ek_certificate.public_key())).hexdigest()
    ak_key = ak_public.public_key()
    assert isinstance(ak_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    issuer_key = ca.certificate.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "attestnet TPM AK"),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, ek_id),
                ]
            )
        )
        .issuer_name(ca.certificate.subject)
        .public_key(ak_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ak_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key),  # type: ignore[arg-type]
            critical=False,
        )
    )
    identity = _tpm_identity_names(ek_certificate)
    if identity:
        builder = builder.add_extension(x509.SubjectAlternativeName(identity), critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())  # type: ignore[arg-type]


def enroll_ak(
    attester: TpmAttester,
    ca: LocalCa,
    *,
    at: datetime | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[x509.Certificate, ...]:
    """Enrol the attester's AK: check its EK, activate a credential, issue a certificate.

    1. The EK certificate read from the TPM must chain to `ca` at `at` (now by
       default) and match the EK that the TPM recreates from the TCG template.
    2. The AK must be a restricted, fixedTPM signing key.
    3. MakeCredential runs in software against the EK public key and the AK's
       name, and the TPM must return the random credential through
       ActivateCredential, which only the TPM holding both keys can do.
    Then the AK certificate is issued, set on `attester` and returned with the
    CA certificate as the chain (AK certificate first).
    """
    from tpm2_pytss import TPM2B_NAME, TPM2B_PUBLIC, TPMT_PUBLIC
    from tpm2_pytss.utils import make_credential

    at = at or datetime.now(UTC)
    ek_certificate, ek_public = attester.ek_certificate_and_public()
    verify_chain(
        ek_certificate,
        TrustAnchors(certificates=(ca.root,)),
        at,
        intermediates=[ca.certificate],
    )
    ak_public = attester.ak_public
    if not ak_public.has_attributes(_AK_REQUIRED) or ak_public.object_attributes & ATTR_DECRYPT:
        raise VerificationError(
            "ak attributes",
            "the AK must be a restricted, fixedTPM signing key",
            claim="objectAttributes",
            expected=f"{_AK_REQUIRED:#010x} set, decrypt clear",
            actual=f"{ak_public.object_attributes:#010x}",
        )

    challenge = secrets.token_bytes(32)
    ek_area, _ = TPMT_PUBLIC.unmarshal(ek_public.raw)
    name, _ = TPM2B_NAME.unmarshal(len(ak_public.name()).to_bytes(2, "big") + ak_public.name())
    blob, secret = make_credential(TPM2B_PUBLIC(publicArea=ek_area), challenge, name)
    returned = attester.activate_credential(blob.marshal(), secret.marshal())
    if not hmac.compare_digest(returned, challenge):
        raise VerificationError(
            "credential activation",
            "the TPM returned a different credential, so the AK and EK are not in one TPM",
        )

    certificate = issue_ak_certificate(
        ak_public, ca, ek_certificate=ek_certificate, not_before=not_before, not_after=not_after
    )
    chain = (certificate, ca.certificate)
    attester.set_ak_certificates(chain)
    logger.info("enrolled TPM AK %s", ak_public.name().hex())
    return chain
