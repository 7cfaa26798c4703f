"""nexotc: a thin typed client over the nexotc escrow contracts, plus the desk engine."""

from nexotc_client.terms import Leg, Party, Role, Terms, TermsError, Tranche

__all__ = ["Leg", "Party", "Role", "Terms", "TermsError", "Tranche"]
__version__ = "0.1.0"
