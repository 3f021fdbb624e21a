from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestnet.appraisal import load_policy
from attestnet.errors import PolicyError


def write_anchor(folder: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (folder / "platform.pem").write_bytes(pem)


GOOD = """
id = "p1"
allowed = ["sim"]

[anchors]
sim = ["platform.pem"]

[reference_values.sim]
"sim/code" = ["00ff"]

[min_tcb.snp]
bootloader = 3
"""


def test_policy_file_loads(tmp_path: Path) -> None:
    write_anchor(tmp_path)
    (tmp_path / "policy.toml").write_text(GOOD)
    policy = load_policy(tmp_path / "policy.toml")
    assert policy.id == "p1"
    assert policy.allowed == {"sim"}
    assert policy.reference_values["sim"]["sim/code"] == {b"\x00\xff"}
    assert policy.min_tcb["snp"]["bootloader"] == 3
    assert policy.debug_allowed is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("extra = 1\n" + GOOD, "unknown policy keys"),
        (GOOD.replace('"00ff"', '"zz"'), "not a hex string"),
        (GOOD.replace('allowed = ["sim"]', 'allowed = "sim"'), "allowed"),
        (GOOD.replace("platform.pem", "missing.pem"), "cannot read trust anchor"),
        (GOOD.replace("bootloader = 3", 'bootloader = "3"'), "min_tcb.snp.bootloader"),
        ("id = ", "not valid TOML"),
    ],
)
def test_invalid_policy_rejected(tmp_path: Path, text: str, message: str) -> None:
    write_anchor(tmp_path)
    (tmp_path / "policy.toml").write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(tmp_path / "policy.toml")


def test_missing_policy_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "absent.toml")
