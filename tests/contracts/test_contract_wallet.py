"""A smart-contract wallet (Safe-like) can hold a deal's approver and release-signer roles: roles
are checked against msg.sender, so any wallet that can send a call can act."""

import ape
from eth_utils import keccak


def test_contract_wallet_as_approver_and_signer_releases(
    project, escrowed_terms, create_deal, fund, usdt, buyer, seller, lawyer, desk, chain
):
    wallet = lawyer.deploy(project.MockWallet, lawyer.address)
    terms = escrowed_terms(approvers=[wallet.address], signers=[wallet.address, buyer.address], release_threshold=2)
    deal = create_deal(terms, desk)
    fund(deal, terms, None, usdt, buyer, seller)
    chain.pending_timestamp = terms.tranches[0].unlock_time
    deal.mark(0, keccak(text="btc-txid-1"), sender=seller)

    # the wallet's owner approves through the wallet; a direct call by the owner is not the wallet
    with ape.reverts("not an approver"):
        deal.approve(0, sender=lawyer)
    wallet.execute(deal.address, deal.approve.encode_input(0), sender=lawyer)
    assert deal.has_approved(0, wallet.address)

    wallet.execute(deal.address, deal.release.encode_input(0), sender=lawyer)
    assert deal.signatures(0) == 1 and deal.tranche_status(0) == 1  # still marked: 1 of 2 signatures
    before = usdt.balanceOf(seller)
    deal.release(0, sender=buyer)
    assert deal.tranche_status(0) == 3
    q = terms.tranches[0].quote_amount
    assert usdt.balanceOf(seller) - before == q - sum(terms.commissions(q).values())


def test_only_the_wallet_owner_can_use_it(project, lawyer, attacker, desk):
    wallet = lawyer.deploy(project.MockWallet, lawyer.address)
    with ape.reverts("not the owner"):
        wallet.execute(desk.address, b"", sender=attacker)
