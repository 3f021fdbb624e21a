"""Evidence formats: parse bytes into typed claims, verify signatures and chains.

No policy and no I/O here: a verifier takes bytes, trust anchors, collateral and the
verification time, and returns `VerifiedEvidence` or raises.
"""
