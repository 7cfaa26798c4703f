"""Deploy the nexotc escrow factory (and its DealEscrow implementation) and record it.

    ape run deploy --network ethereum:local:foundry
    ape run deploy --network ethereum:sepolia:node --account deployer

The factory deploys the implementation itself (so the implementation's FACTORY is the factory);
neither has an owner. The address is recorded in .nexotc/deployments.json for the client and CLI.
"""

from __future__ import annotations

import click
from ape import accounts, networks
from ape.cli import ConnectedProviderCommand, account_option

from nexotc_client.chain.deployment import deploy_factory


@click.command(cls=ConnectedProviderCommand)
@account_option()
def cli(account) -> None:
    """Deploy EscrowFactory on the selected network and record its address."""
    factory = deploy_factory(account)
    network = networks.provider.network
    click.echo(
        f"EscrowFactory {factory.address} on {network.ecosystem.name}:{network.name} "
        f"(chain {networks.provider.chain_id}); implementation {factory.implementation}"
    )


__all__ = ["cli", "accounts"]
