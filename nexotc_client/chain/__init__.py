"""Thin typed wrappers over the deployed contracts. State is always read from the chain.

factory = deploy_factory(sender)            # or get_factory() for the recorded one
deal = factory.create(terms, sender=seller, fund=True)
deal.fund(buyer); deal.release(0, buyer); deal.status(); deal.events()
"""

from nexotc_client.chain.deal import (
    Deal,
    DealEvent,
    DealStatus,
    LegStatus,
    Split,
    TrancheState,
    TxResult,
    funding_leg,
)
from nexotc_client.chain.deployment import (
    Deployment,
    Registry,
    deploy_factory,
    get_deployment,
    get_factory,
    network_key,
    nexotc_home,
)
from nexotc_client.chain.errors import NexotcError, NotADealError, NotDeployedError, RevertError
from nexotc_client.chain.factory import DealRecord, Factory

__all__ = [
    "Deal",
    "DealEvent",
    "DealRecord",
    "DealStatus",
    "Deployment",
    "Factory",
    "LegStatus",
    "NexotcError",
    "NotADealError",
    "NotDeployedError",
    "Registry",
    "RevertError",
    "Split",
    "TrancheState",
    "TxResult",
    "deploy_factory",
    "funding_leg",
    "get_deployment",
    "get_factory",
    "network_key",
    "nexotc_home",
]
