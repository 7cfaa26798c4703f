"""A fork server for the CLI tests: one process imports ape, its plugins and the `nexotc` command once,
then forks a fresh child for every command the tests run. Each child is a new process, as when a user
types the command: its own environment, working directory, stdin, stdout and stderr, and an exit code
from `nexotc_client.cli.main`, the console entry point. What it skips is the two to three seconds every
`nexotc` process spends importing ape and loading its plugins and the project's contract types, which
made the CLI tests most of the suite's time.

Protocol (one JSON object per line): the test sends {"argv", "env", "cwd", "out", "err"}; the server
answers {"pid"} as soon as the child runs, then {"code"} when it has exited. NEXOTC_TEST_SUBPROCESS=1
makes `clikit.Cli` skip the server and start the console script instead."""

from __future__ import annotations

import json
import os
import sys
import traceback


def _preload() -> None:
    """Import what every chain command imports (nothing connects: the children do)."""
    import nexotc_client.cli  # noqa: F401  (registers every command group)
    from nexotc_client.cli.app import _quiet_ape

    _quiet_ape()
    import ape
    from ape import networks

    networks.ethereum.local  # noqa: B018  (loads the ecosystem and provider plugins)
    networks.get_provider_from_choice("ethereum:local:foundry")
    from nexotc_client.chain.contracts import deal_container, factory_container

    deal_container()
    factory_container()
    ape.accounts.test_accounts[0]  # noqa: B018


def _child(request: dict) -> int:
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["out"]), (2, request["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["nexotc", *request["argv"]]
    from nexotc_client.cli import main

    try:
        main()
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:  # as the interpreter does for an uncaught exception
        traceback.print_exc()
        return 1
    return 0


def serve() -> None:
    _preload()
    requests = os.fdopen(0, "r")
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing but answers on the answer pipe
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code & 0xFF)
        answers.write(json.dumps({"pid": pid}) + "\n")
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve()
