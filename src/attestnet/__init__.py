"""attestnet: attested TLS, evidence verification and trusted networks of CC machines."""

__version__ = "0.1.0"
