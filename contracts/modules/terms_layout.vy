# pragma version 0.4.3
"""
@title terms_layout
@notice Roles, statuses and the packed layout of deal terms, shared by the
        factory (which packs and validates terms) and the deal escrow (which
        reads them back from its own code).
@dev Packed terms are a sequence of 256-bit words appended to each deal's
     EIP-1167 clone code:
       word 0          base token (bits 0-159) | base leg total (160-255)
       word 1          quote token (0-159)      | quote leg total (160-255)
       word 2 .. 2+P   parties: wallet (0-159) | roles (160-175) | bps (176-191)
                       | 64 bits of deal configuration (192-255), by position:
                         buyer     funding deadline, final expiry
                         seller    approval window, dispute timeout
                         platform  desk fee bps, resolver fee bps,
                                   compliance policy id (0: none)
                         resolver  counts, thresholds and flags (CONF_*,
                                   CONF_GATED: the deal has a policy)
       then T words    tranches: base (0-95) | quote (96-191)
                                 | unlock time (192-223) | deadline (224-255)
     The configuration rides in the spare bits of the four fixed parties so
     that a deal pays no code for a separate config word.
     Amounts are capped at 2**96 - 1, times at 2**32 - 1 (year 2106).
@custom:security Pure helpers only; this module has no storage.
"""

# Roles (bit flags of Party.roles).
ROLE_BUYER: constant(uint256) = 1
ROLE_SELLER: constant(uint256) = 2
ROLE_PLATFORM: constant(uint256) = 4
ROLE_RESOLVER: constant(uint256) = 8
ROLE_BASE_RECEIVER: constant(uint256) = 16
ROLE_QUOTE_RECEIVER: constant(uint256) = 32
ROLE_MARKER: constant(uint256) = 64
ROLE_APPROVER: constant(uint256) = 128
ROLE_SIGNER: constant(uint256) = 256
ROLE_INTRODUCER: constant(uint256) = 512
ROLE_ALL: constant(uint256) = 1023

# Fixed party positions.
P_BUYER: constant(uint256) = 0
P_SELLER: constant(uint256) = 1
P_PLATFORM: constant(uint256) = 2
P_RESOLVER: constant(uint256) = 3

# Legs.
LEG_BASE: constant(uint256) = 0
LEG_QUOTE: constant(uint256) = 1

# Dispute default outcomes.
DEFAULT_REFUND: constant(uint256) = 0
DEFAULT_RELEASE: constant(uint256) = 1

# Tranche statuses (4 bits each in the deal state word).
PENDING: constant(uint256) = 0
MARKED: constant(uint256) = 1
DISPUTED: constant(uint256) = 2
RELEASED: constant(uint256) = 3
REFUNDED: constant(uint256) = 4
RESOLVED: constant(uint256) = 5

# Limits.
MAX_PARTIES: constant(uint256) = 16
MAX_TRANCHES: constant(uint256) = 32
MAX_INTRODUCERS: constant(uint256) = 4
MAX_MARKERS: constant(uint256) = 4
MAX_TOTAL_FEE_BPS: constant(uint256) = 1_000
MAX_RESOLVER_FEE_BPS: constant(uint256) = 500
BPS: constant(uint256) = 10_000
MAX_WORDS: constant(uint256) = 50
HEADER_WORDS: constant(uint256) = 2

MASK_160: constant(uint256) = 2**160 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_32: constant(uint256) = 2**32 - 1
MASK_16: constant(uint256) = 2**16 - 1
MASK_8: constant(uint256) = 2**8 - 1

# Configuration shifts, each in the word of the fixed party named.
# buyer word
CONF_FUNDING_DEADLINE: constant(uint256) = 192
CONF_FINAL_EXPIRY: constant(uint256) = 224
# seller word
CONF_APPROVAL_WINDOW: constant(uint256) = 192
CONF_DISPUTE_TIMEOUT: constant(uint256) = 224
# platform word
CONF_DESK_FEE_BPS: constant(uint256) = 192
CONF_RESOLVER_FEE_BPS: constant(uint256) = 208
# KYCRegistry policy id every principal must hold (0: no compliance gate)
CONF_POLICY_ID: constant(uint256) = 224
# resolver word
CONF_N_PARTIES: constant(uint256) = 192
CONF_N_TRANCHES: constant(uint256) = 200
CONF_APPROVAL_THRESHOLD: constant(uint256) = 208
CONF_RELEASE_THRESHOLD: constant(uint256) = 216
CONF_BASE_ON_CHAIN: constant(uint256) = 224
CONF_QUOTE_ON_CHAIN: constant(uint256) = 225
CONF_FEE_LEG: constant(uint256) = 226
CONF_DISPUTE_DEFAULT: constant(uint256) = 227
# set when the platform word carries a compliance policy id, so that an
# ungated deal reads no extra word to learn it has no policy
CONF_GATED: constant(uint256) = 228

# Party and tranche word shifts.
PARTY_ROLES: constant(uint256) = 160
PARTY_BPS: constant(uint256) = 176
TRANCHE_QUOTE: constant(uint256) = 96
TRANCHE_UNLOCK: constant(uint256) = 192
TRANCHE_DEADLINE: constant(uint256) = 224


@internal
@pure
def _field(word: uint256, offset: uint256, mask: uint256) -> uint256:
    return (word >> offset) & mask


@internal
@pure
def _flag(word: uint256, bit: uint256) -> bool:
    return (word >> bit) & 1 == 1


@internal
@pure
def _wallet(word: uint256) -> address:
    return convert(convert(word & MASK_160, uint160), address)
