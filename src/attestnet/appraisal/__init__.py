"""Appraisal: policies, reference values, the relying party's checks, EAR results."""

from attestnet.appraisal.policy import Policy, load_policy, parse_policy
from attestnet.appraisal.verifier import AppraisalResult, Verifier

__all__ = ["AppraisalResult", "Policy", "Verifier", "load_policy", "parse_policy"]
