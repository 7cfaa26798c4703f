"""The nonces of the offers the desk engine signs, on a real anvil.

The factory fills at most one offer per (maker, nonce). Every offer the desk engine signs (a quote's lock offer,
a match invite) is recorded in the desk store with its nonce, and a new offer takes a nonce above every nonce
the store holds for its maker: two quotes locked for two clients before either accepts, or a lock and a match
invite, never void each other. Locking a quote again while its earlier offer is untaken re-uses that offer's
nonce (it supersedes it), so the client can fill only one of them; once the client accepted a lock offer, a new
lock is refused naming the deal; once the desk cancelled it, the new lock takes a fresh nonce.

Actors: the desk's trading wallet is `seller` (it sells the BTC the clients buy; `lawyer` stands for a second
trading wallet); the clients are `buyer` and `client_b`; the desk's fee wallet `desk` is the platform; the resolver
is independent. The CLI tests run
`nexotc quote lock | quote take | offer accept | match invite` as subprocesses against a node started by
`nexotc node start`: test:2 is the desk's trading wallet, test:1 and test:3 the clients.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import ape
import pytest
from clikit import ROOT, Cli, assert_one_line_error, node_cli
from deskkit import PRICE
from deskkit import accepted_quote as saved_quote

from nexotc_client.chain import NexotcError, Registry, deploy_factory
from nexotc_client.chain.offers import accept_offer, cancel_nonces, nonce_used
from nexotc_client.desk.db import Database
from nexotc_client.desk.lock import LockError, LockParams, SignedLock, accept_lock, sign_quote_lock
from nexotc_client.desk.match import MakerOffer, MatchBook, Preference, invite_offer
from nexotc_client.desk.models import Quote, Side
from nexotc_client.desk.store import DeskStore
from nexotc_client.offers import SignedOffer

BTC = 10**8
USD = 10**6
WALLETS = ("--platform", "test:0", "--resolver", "test:4")


@pytest.fixture(scope="module")
def client_b(accounts):
    """A second client of the desk."""
    return accounts[9]


@pytest.fixture(scope="module")
def nxf(desk, tmp_path_factory):
    """The nexotc Factory of this module (not `nx`: that is conftest's function-scoped CLI runner, and ape's
    chain isolation, which tracks fixtures by name, mis-restores a module fixture sharing its name)."""
    return deploy_factory(desk, registry=Registry(tmp_path_factory.mktemp("nexotc") / "deployments.json"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[DeskStore]:
    db = Database.open(f"sqlite:///{Path(tmp_path_factory.mktemp('desk')) / 'desk.db'}")
    yield DeskStore(db)
    db.close()


@pytest.fixture(scope="module")
def params_for(wbtc, usdt, desk, buyer, seller, resolver, client_b, lawyer) -> Callable[..., LockParams]:
    """The lock parameters of a quote of `client` against the desk's trading wallet (`lawyer`: a second trading
    wallet of the desk)."""
    for trading_wallet in (seller, lawyer):
        wbtc.mint(trading_wallet, 1_000 * BTC, sender=desk)
    for client in (buyer, client_b):
        usdt.mint(client, 10_000_000 * USD, sender=desk)

    def build(client, **kw) -> LockParams:
        return LockParams(
            base_token=wbtc.address,
            quote_token=usdt.address,
            desk=seller.address,
            client=client.address,
            platform=desk.address,
            resolver=resolver.address,
            **kw,
        )

    return build


def accept_raw(nxf, signed: SignedOffer, taker) -> None:
    """The factory's own accept_offer, sent without the client's checks."""
    o = signed.offer
    nxf.contract.accept_offer(o.terms.as_struct(), o.as_struct(), signed.signature, b"", True, sender=taker)


# ------------------------------------------------------------------ fresh nonces
def test_two_quotes_locked_before_either_is_accepted_get_fresh_nonces_and_both_fill(
    nxf, store, params_for, chain, buyer, client_b, seller
) -> None:
    first = sign_quote_lock(nxf, store, accepted_quote(store, "Q-TWO-1"), params_for(buyer), seller)
    second = sign_quote_lock(nxf, store, accepted_quote(store, "Q-TWO-2", "2"), params_for(client_b), seller)
    assert first.nonce != second.nonce and first.supersedes is None and second.supersedes is None
    assert {first.nonce, second.nonce} <= set(store.offer_nonces(chain.chain_id, nxf.address, seller.address))
    [recorded] = store.signed_offers(quote_id="Q-TWO-2")
    assert (recorded.offer_hash, recorded.nonce, recorded.maker) == (
        second.offer_hash,
        second.nonce,
        seller.address.lower(),
    )

    lock_1, accepted_1 = accept_lock(nxf, first.signed, buyer, store, fund=True)
    lock_2, accepted_2 = accept_lock(nxf, second.signed, client_b, store, fund=True)
    assert lock_1.deal != lock_2.deal
    assert accepted_1.deal.status().funded == accepted_2.deal.status().funded == (True, True)
    assert accepted_2.deal.terms.base.amount == 2 * BTC
    assert store.lock_of("Q-TWO-1") == lock_1 and store.lock_of("Q-TWO-2") == lock_2


def test_a_lock_and_a_match_invite_of_one_wallet_get_different_nonces(
    nxf, store, params_for, buyer, client_b, seller
) -> None:
    lock = sign_quote_lock(nxf, store, accepted_quote(store, "Q-INV-1"), params_for(buyer), seller)
    book = MatchBook(store)
    book.post_offer(
        MakerOffer("O-NONCE", seller.address, "BTC/USDT", Side.SELL, Decimal(1), Decimal(5), PRICE, 3_600, 2)
    )
    book.post_preference(
        Preference("P-NONCE", client_b.address, "BTC/USDT", Side.BUY, Decimal(1), Decimal(2), PRICE, Decimal(20), 7_200)
    )
    _, [match] = book.propose("P-NONCE", limit=1)
    invite, _ = invite_offer(nxf, book, match.match_id, seller, params_for(client_b))
    assert invite.offer.maker == lock.signed.offer.maker and invite.offer.nonce != lock.nonce
    [recorded] = store.signed_offers(match_id=match.match_id)
    assert recorded.nonce == invite.offer.nonce and recorded.quote_id is None
    # each fills: neither voided the other
    accepted_invite = accept_offer(nxf, invite, client_b, fund=True)
    _, accepted_lock = accept_lock(nxf, lock.signed, buyer, store, fund=True)
    assert accepted_invite.deal.terms.base.amount == 2 * BTC and accepted_lock.deal.terms.base.amount == BTC
    assert accepted_invite.deal.status().funded == accepted_lock.deal.status().funded == (True, True)


# ------------------------------------------------------------------ locking a quote again
def test_relocking_an_untaken_quote_reuses_its_nonce_so_only_one_offer_fills(
    nxf, store, params_for, buyer, seller, wbtc, usdt
) -> None:
    quote = accepted_quote(store, "Q-RELOCK")
    first = sign_quote_lock(nxf, store, quote, params_for(buyer), seller)
    # the desk locks the quote again (other tranches) before the client took the first offer: same nonce
    second = sign_quote_lock(nxf, store, quote, params_for(buyer, tranches=2, interval_s=3_600), seller)
    third = sign_quote_lock(nxf, store, quote, params_for(buyer, tranches=3, interval_s=3_600), seller)
    assert first.nonce == second.nonce == third.nonce
    assert (second.supersedes, third.supersedes) == (first.offer_hash, second.offer_hash)
    assert len({first.offer_hash, second.offer_hash, third.offer_hash}) == 3
    assert [r.supersedes for r in store.signed_offers(quote_id="Q-RELOCK")] == [
        None,
        first.offer_hash,
        second.offer_hash,
    ]

    lock, accepted = accept_lock(nxf, second.signed, buyer, store, fund=True)
    assert len(accepted.deal.terms.tranches) == 2 and nonce_used(nxf, seller.address, first.nonce)
    balances = (wbtc.balanceOf(seller), usdt.balanceOf(buyer))
    deals = nxf.deal_count
    # the other two can never fill: the client refuses them, the factory reverts, nothing moves
    for other in (first, third):
        with pytest.raises(NexotcError, match=f"nonce {first.nonce} is used or cancelled"):
            accept_offer(nxf, other.signed, buyer, fund=True)
        with ape.reverts("nonce used or cancelled"):
            accept_raw(nxf, other.signed, buyer)
    assert (wbtc.balanceOf(seller), usdt.balanceOf(buyer)) == balances and nxf.deal_count == deals
    assert store.lock_of("Q-RELOCK") == lock


def test_relocking_after_the_client_accepted_is_refused_naming_the_deal(nxf, store, params_for, buyer, seller) -> None:
    quote = accepted_quote(store, "Q-TAKEN")
    first = sign_quote_lock(nxf, store, quote, params_for(buyer), seller)
    # the client accepts with its own tools: this desk database is not told
    accepted = accept_offer(nxf, first.signed, buyer, fund=True)
    assert store.lock_of("Q-TAKEN") is None
    deal = accepted.deal.address
    with pytest.raises(LockError, match=f"quote Q-TAKEN was already accepted on chain: .* made deal {deal}"):
        sign_quote_lock(nxf, store, quote, params_for(buyer, tranches=2, interval_s=3_600), seller)
    assert [r.offer_hash for r in store.signed_offers(quote_id="Q-TAKEN")] == [first.offer_hash]  # nothing signed


def test_relocking_after_the_desk_cancelled_takes_a_fresh_nonce(
    nxf, store, params_for, buyer, client_b, seller
) -> None:
    other: SignedLock = sign_quote_lock(nxf, store, accepted_quote(store, "Q-OTHER"), params_for(client_b), seller)
    quote = accepted_quote(store, "Q-CANCEL")
    first = sign_quote_lock(nxf, store, quote, params_for(buyer), seller)
    cancel_nonces(nxf, [first.nonce], seller)
    again = sign_quote_lock(nxf, store, quote, params_for(buyer), seller)
    # neither the cancelled nonce nor the one another client's untaken offer holds
    assert again.supersedes is None and again.nonce not in (first.nonce, other.nonce)
    with pytest.raises(NexotcError, match="used or cancelled"):
        accept_offer(nxf, first.signed, buyer)
    _, accepted = accept_lock(nxf, again.signed, buyer, store, fund=True)
    _, accepted_other = accept_lock(nxf, other.signed, client_b, store, fund=True)
    assert accepted.deal.address != accepted_other.deal.address


def test_another_wallet_locks_a_quote_only_once_the_first_wallets_offer_is_withdrawn(
    nxf, store, params_for, buyer, seller, lawyer
) -> None:
    quote = accepted_quote(store, "Q-WALLETS")
    first = sign_quote_lock(nxf, store, quote, params_for(buyer), seller)
    # nonces are per maker: another trading wallet's offer could never void the first one, so it is refused
    by_lawyer = replace(params_for(buyer), desk=lawyer.address)
    with pytest.raises(LockError, match=f"untaken lock offer {first.offer_hash} .* --nonce {first.nonce} --account"):
        sign_quote_lock(nxf, store, quote, by_lawyer, lawyer)
    cancel_nonces(nxf, [first.nonce], seller)
    second = sign_quote_lock(nxf, store, quote, by_lawyer, lawyer)
    assert second.supersedes is None and second.signed.offer.maker == lawyer.address
    _, accepted = accept_lock(nxf, second.signed, buyer, store, fund=True)
    assert accepted.deal.status().funded == (True, True)


# ------------------------------------------------------------------ through the CLI
@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    with node_cli(tmp_path_factory.mktemp("nexotc-desk-nonces"), deploy=True) as c:
        yield c


def cli_quote(cli: Cli, rfq_id: str, client: str) -> str:
    cli.ok("rfq", "new", "--client", client, "--side", "buy", "--size", "1", "--id", rfq_id)
    cli.ok("quote", "new", rfq_id, "--ttl", "10m")
    cli.ok("quote", "accept", f"{rfq_id}-q1")
    return f"{rfq_id}-q1"


def cli_lock(cli: Cli, qid: str, client: str, *extra: str) -> tuple[str, ...]:
    return ("quote", "lock", qid, "--account", "test:2", "--client", client, *WALLETS, *extra)


def test_cli_locks_of_two_clients_both_fill_and_a_relock_supersedes(cli: Cli) -> None:
    qa, qb = cli_quote(cli, "NA", "test:1"), cli_quote(cli, "NB", "test:3")
    lock_a = cli.ok(*cli_lock(cli, qa, "test:1"), "--json").json()
    lock_b = cli.ok(*cli_lock(cli, qb, "test:3"), "--json").json()
    # the desk locks quote A again (twice) before its client took it: each supersedes the one before
    again = cli.ok(*cli_lock(cli, qa, "test:1", "--tranches", "2", "--interval", "1h"), "--json").json()
    human = cli.ok(*cli_lock(cli, qa, "test:1", "--tranches", "3", "--interval", "1h")).out

    # both clients fill: neither lock voided the other
    taken_b = cli.ok("quote", "take", lock_b["link"], "--account", "test:3", "--fund", "--json").json()
    taken_a = cli.ok("quote", "take", again["link"], "--account", "test:1", "--fund", "--json").json()
    assert taken_a["quote_id"] == qa and taken_b["quote_id"] == qb and taken_a["deal"] != taken_b["deal"]
    assert lock_a["nonce"] != lock_b["nonce"] and lock_a["supersedes"] is None is lock_b["supersedes"]
    # quote A's other offers share the nonce of the one its client took: void
    assert again["nonce"] == lock_a["nonce"] and again["supersedes"] == lock_a["offer_hash"]
    assert f"(nonce {lock_a['nonce']})" in human and f"supersedes {again['offer_hash']}" in human
    assert_one_line_error(
        cli("offer", "accept", lock_a["link"], "--account", "test:1"), f"nonce {lock_a['nonce']} is used or cancelled"
    )


def test_cli_relock_after_the_client_accepted_elsewhere_is_refused_naming_the_deal(cli: Cli) -> None:
    qid = cli_quote(cli, "NC", "test:1")
    lock = cli.ok(*cli_lock(cli, qid, "test:1"), "--json").json()
    # the client accepts with `offer accept` (not `quote take`): the desk database does not know the deal
    deal = cli.ok("offer", "accept", lock["link"], "--account", "test:1", "--fund", "--json").json()["deal"]
    assert cli.ok("quote", "show", qid, "--json").json()["lock"] is None
    assert_one_line_error(
        cli(*cli_lock(cli, qid, "test:1", "--tranches", "2")), f"quote {qid} was already accepted on chain", deal
    )


def test_cli_a_lock_and_a_match_invite_of_one_wallet_get_different_nonces(cli: Cli) -> None:
    qid = cli_quote(cli, "ND", "test:1")
    lock = cli.ok(*cli_lock(cli, qid, "test:1"), "--json").json()
    cli.ok("match", "offer", "--maker", "test:2", "--side", "sell", "--size", "1-5", "--price", "65000", "--id", "ON")
    cli.ok(
        "match", "want", "--taker", "test:3", "--side", "buy", "--size", "1-2", "--ref-price", "65000",
        "--tolerance-bps", "20", "--id", "PN",
    )  # fmt: skip
    match_id = cli.ok("match", "rank", "PN", "--offline", "--json").json()["matches"][0]
    invite = cli.ok("match", "invite", match_id, "--account", "test:2", *WALLETS, "--json").json()
    # each fills: neither voided the other
    accepted = cli.ok("offer", "accept", invite["link"], "--account", "test:3", "--fund").out
    # the funding events show amounts with their token's symbol, as `deal` commands do
    funded = [line for line in accepted.splitlines() if "Funded(" in line]
    assert len(funded) == 2 and all(re.search(r"amount=[\d,.]+ (WBTC|USDT)\)", line) for line in funded), accepted
    assert cli.ok("quote", "take", lock["link"], "--account", "test:1", "--fund", "--json").json()["quote_id"] == qid
    assert invite["nonce"] != lock["nonce"]


def test_cli_offer_create_and_the_desk_engine_never_share_a_nonce(cli: Cli) -> None:
    """One wallet signs both ways: `offer create` (offer files in the home) and `quote lock` (the desk database)."""
    terms = ROOT / "examples" / "dvp-wbtc-usdt.yaml"
    first = cli.ok(*cli_lock(cli, cli_quote(cli, "NE", "test:1"), "test:1"), "--json").json()
    made = cli.ok("offer", "create", "--terms", terms, "--account", "test:2", "--taker", "test:1", "--json").json()
    second = cli.ok(*cli_lock(cli, cli_quote(cli, "NF", "test:1"), "test:1"), "--json").json()
    assert len({first["nonce"], made["nonce"], second["nonce"]}) == 3


def test_cli_lock_for_a_desk_makes_a_desk_deal(cli: Cli) -> None:
    """`quote lock --desk`: the lock offer carries the desk (its rules checked before anything is signed or
    recorded); the client's acceptance makes a desk deal."""
    cli.ok(
        "desk", "create", "--admin", "test:9", "--fee-recipient", "test:0", "--max-fee-bps", "30",
        "--introducer-cap-bps", "0", "--asset", "WBTC", "--asset", "USDT", "--account", "test:9",
    )  # fmt: skip
    qid = cli_quote(cli, "NG", "test:1")
    refused = cli(*cli_lock(cli, qid, "test:1", "--desk", "1"))
    assert_one_line_error(refused, "desk #1 refuses this deal", "neither the maker", "nor the taker")
    assert cli.ok("quote", "show", qid, "--json").json()["lock"] is None
    assert_one_line_error(cli(*cli_lock(cli, qid, "test:1", "--desk", "9")), "--desk 9: no such desk")
    cli.ok("desk", "add-member", "1", "test:2", "--role", "trader", "--account", "test:9")
    lock = cli.ok(*cli_lock(cli, qid, "test:1", "--desk", "1", "--desk-fee-bps", "20"), "--json").json()
    assert cli.ok("offer", "open", lock["link"], "--account", "test:1", "--json").json()["desk_id"] == 1
    deal = cli.ok("quote", "take", lock["link"], "--account", "test:1", "--fund", "--json").json()["deal"]
    assert cli.ok("deal", "show", deal, "--json").json()["desk_id"] == 1


def accepted_quote(store: DeskStore, quote_id: str, size: str = "1") -> Quote:
    return saved_quote(store, quote_id, size, client="client")
