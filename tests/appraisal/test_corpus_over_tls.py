"""Evidence of any format reaches the same appraisal code over attested TLS.

Corpus evidence cannot carry this connection's binder, so an attester that
presents it is rejected at the binder check, after its format verifier has
verified the signature: that order shows the relying party ran the real verifier.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from attestnet.appraisal import Policy, Verifier
from attestnet.cli._common import read_evidence_file
from attestnet.errors import AttestnetError, VerificationError
from attestnet.evidence import cmw, registry
from attestnet.evidence.anchors import load_anchors
from attestnet.tls.blocking import connect, listen
from attestnet.tls.config import AttestedTLSConfig, Binding, Role

SAMPLES = [
    ("psa", "psa/tfm_psa-2_0_0_sign1.cbor", "psa/tfm_iak_public.pem"),
    ("cca", "cca/tfmtools_cca_example_token.cbor", "cca/cca_cpak_public.pem"),
]


class FixedEvidence:
    """An attester that presents recorded evidence whatever the binder (a replay)."""

    def __init__(self, format: str, evidence: bytes) -> None:
        self.record = cmw.encode_record(registry.media_type_for(format), evidence)

    def evidence(self, binder: bytes) -> bytes:
        return self.record


@pytest.mark.parametrize(("format", "evidence", "anchor"), SAMPLES)
def test_corpus_evidence_appraised_then_rejected_at_binder(
    corpus: Path, format: str, evidence: str, anchor: str
) -> None:
    attester = FixedEvidence(format, read_evidence_file(corpus / evidence))
    server_config = AttestedTLSConfig(
        binding=Binding.EXPAT,
        role=Role.ATTESTER,
        attester=attester,
        insecure_unauthenticated_peer=True,
    )
    policy = Policy(
        id="corpus",
        allowed=frozenset({format}),
        anchors={format: load_anchors([corpus / anchor])},
        unsafe_skip_reference_values=True,
    )
    client_config = AttestedTLSConfig(
        binding=Binding.EXPAT, role=Role.RELYING_PARTY, appraiser=Verifier(policy)
    )
    with listen("127.0.0.1", 0, server_config) as server:

        def accept() -> None:
            # The client aborts the connection; that is the expected outcome.
            with contextlib.suppress(AttestnetError, OSError):
                server.accept(timeout=10).close()

        thread = threading.Thread(target=accept)
        thread.start()
        with pytest.raises(VerificationError) as failure:
            connect("127.0.0.1", server.address[1], client_config)
        thread.join(timeout=10)

    assert failure.value.check == "binder"
    assert any(check.startswith("4. ") for check in failure.value.checks_passed)
