"""What a rejected peer learns, and how the relying party reports an EAR's trust."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestnet.appraisal import Policy, Verifier
from attestnet.appraisal.ear import EarIssuer
from attestnet.attesters.sim import SimAttester
from attestnet.errors import VerificationError
from attestnet.evidence.model import TrustAnchors
from attestnet.tls.blocking import connect, listen
from attestnet.tls.config import AttestedTLSConfig, Binding, Role
from attestnet.tls.errors import PeerAborted
from attestnet.tls.frames import decode_error

SECRET_REFERENCE = bytes.fromhex("5e" * 32)


def test_rejected_attester_learns_only_the_check_name(tmp_path: Path) -> None:
    attester = SimAttester.from_files(tmp_path / "platform.pem")
    policy = Policy(
        id="private-policy-name",
        allowed=frozenset({"sim"}),
        anchors={"sim": TrustAnchors(public_keys=(attester.platform_key.public_key(),))},
        reference_values={"sim": {"sim/code": frozenset({SECRET_REFERENCE})}},
    )
    server_config = AttestedTLSConfig(
        binding=Binding.EXPAT,
        role=Role.ATTESTER,
        attester=attester,
        insecure_unauthenticated_peer=True,
    )
    client_config = AttestedTLSConfig(
        binding=Binding.EXPAT, role=Role.RELYING_PARTY, appraiser=Verifier(policy)
    )
    seen: list[BaseException] = []
    with listen("127.0.0.1", 0, server_config) as server:

        def serve() -> None:
            try:
                with server.accept(timeout=10) as connection:
                    connection.recv()
            except Exception as error:  # the rejection, recorded for the asserts below
                seen.append(error)

        thread = threading.Thread(target=serve)
        thread.start()
        with pytest.raises(VerificationError, match=SECRET_REFERENCE.hex()):
            connect("127.0.0.1", server.address[1], client_config)
        thread.join(timeout=10)

    assert len(seen) == 1
    assert isinstance(seen[0], PeerAborted)
    assert seen[0].reason == "check failed: measurements"
    assert SECRET_REFERENCE.hex() not in str(seen[0])
    assert "private-policy-name" not in str(seen[0])


def test_error_reason_is_bounded_and_escaped() -> None:
    _, reason = decode_error(bytes([40]) + (11).to_bytes(2, "big") + b"bad\nforged!")
    assert reason == "bad\\nforged!"
    too_long = bytes([40]) + (1025).to_bytes(2, "big") + b"x" * 1025
    with pytest.raises(Exception, match="at most 1024"):
        decode_error(too_long)


def test_ear_appraisal_adds_no_trust() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    submod = {
        "ear.status": "affirming",
        "ear.trustworthiness-vector": {"instance-identity": 2, "hardware": 0, "executables": 0},
        "ear.appraisal-policy-id": "p",
    }
    token = EarIssuer(key).issue({"dpu": submod}, at=at).encode()
    policy = Policy(
        id="results",
        allowed=frozenset({"ear"}),
        anchors={"ear": TrustAnchors(public_keys=(key.public_key(),))},
    )
    result = Verifier(policy).appraise(token, binder=None, at=at, format="ear")
    assert result.trust_vector == {"instance-identity": 2, "hardware": 0, "executables": 0}
