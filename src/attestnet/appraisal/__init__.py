"""Appraisal: policies, reference values, the relying party checks, EAR results."""
