"""Evidence producers: the sim TEE simulator and TPM 2.0."""
