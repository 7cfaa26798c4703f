"""The `nexotc` command line: `node`, `deploy`, `deal`, `offer`, `msig` and `desk` groups (one module each).

    nexotc node start [--port 8545] [--block-time N] [--fresh]   anvil in the background, state in .nexotc/
    nexotc node status | stop                                     status exits 3 when no node runs
    nexotc deploy --account test:0 [--mock-tokens] [--force]      factory (+ funded WBTC/USDT/WETH mocks locally)
    nexotc deal create --terms FILE.yaml --account A [--fund] [--salt S] [--set KEY=VALUE]... [--dry-run]
    nexotc deal list | show DEAL | events DEAL
    nexotc deal fund DEAL                        (seller: base leg, buyer: quote leg; approves exactly)
    nexotc deal mark DEAL T --evidence TXID      (ESCROWED markers)
    nexotc deal approve DEAL T | release DEAL T
    nexotc deal dispute DEAL T --reason TEXT
    nexotc deal resolve DEAL T (--base R,F,X --quote R,F,X | --receiver-bps N [--resolver-bps M])
    nexotc deal settle DEAL T | refund DEAL T | cancel DEAL | expire DEAL
    nexotc deal claim DEAL --token base|quote|0x.. [--to ADDR]
    nexotc offer create --terms FILE.yaml [--taker ADDR|--public] [--expires +1h] [--approve] [--out F]
    nexotc offer counter FILE --terms NEW.yaml | diff A B | thread FILE... | invite FILE
    nexotc offer open LINK|FILE | accept LINK|FILE [--fund] | cancel --nonce N...
    nexotc msig create --owner A --owner B --threshold N [--salt S] | owners WALLET
    nexotc msig propose WALLET (--to ADDR --data 0x.. | --erc20-transfer T:TO:AMT | --call 'X.f(..)') --out P
    nexotc msig sign P --out SIG | exec P SIG... [--sign-with test:1 ...]
    nexotc desk deploy | create --admin A --fee-recipient F --max-fee-bps N --introducer-cap-bps M
                [--invite-only] [--policy-id X] [--asset TOKEN]... | show ID
    nexotc desk add-member ID WHO --role trader,approver | remove-member ID WHO
    nexotc desk set-assets ID --allow T --disallow T | set-fees ID [--max-fee-bps N] [--introducer-cap-bps M]
    nexotc desk set-access ID public|invite-only | set-policy ID P | suspend ID | unsuspend ID
    nexotc desk propose-admin ID NEW | accept-admin ID     (admin commands: --calldata for a MultiSig)
    nexotc rfq | quote | hedge | settle | recon | match    the desk engine (see nexotc_client.cli.desk_engine)
    nexotc kyc deploy | secret | issue | prove | submit | status | disclose | policy register|list
    nexotc issuer grant ADDR | revoke ADDR | publish-root | prepare | revoke-credential I | path I | show
    nexotc audit export DEAL [--disclosure F]... --out BUNDLE | verify BUNDLE

DEAL is an address or the creation number shown by `deal list` (`3` or `#3`); T a tranche index.
Shared options, before or after the command: --network (ape choice; default ethereum:local:foundry
on the node of `nexotc node start`, never spawning one), --rpc URL, --account (ape alias, or test:N
for the test mnemonic accounts the local node funds; env NEXOTC_ACCOUNT; a keyfile alias reads its
passphrase from APE_ACCOUNTS_<alias>_PASSPHRASE or prompts), --json, --home (env NEXOTC_HOME,
default ./.nexotc).

Printing happens only here. User mistakes end as one line on stderr and a non-zero exit code
(1 error, 2 usage); NEXOTC_DEBUG=1 shows tracebacks.
"""

from nexotc_client.cli.app import App, cli, main, run
from nexotc_client.cli.audit import audit
from nexotc_client.cli.deal import deal
from nexotc_client.cli.deploy import deploy
from nexotc_client.cli.desk import desk
from nexotc_client.cli.desk_engine import hedge, match, quote, recon, rfq, settle
from nexotc_client.cli.kyc import issuer, kyc
from nexotc_client.cli.msig import msig
from nexotc_client.cli.node import node
from nexotc_client.cli.offer import offer
from nexotc_client.cli.report import report

cli.add_command(node)
cli.add_command(deploy)
cli.add_command(deal)
cli.add_command(offer)
cli.add_command(msig)
cli.add_command(desk)
for _group in (rfq, quote, hedge, settle, recon, match):  # the desk engine (nexotc_client.cli.desk_engine)
    cli.add_command(_group)
cli.add_command(kyc)
cli.add_command(issuer)
cli.add_command(audit)
cli.add_command(report)

__all__ = ["App", "cli", "main", "run"]
