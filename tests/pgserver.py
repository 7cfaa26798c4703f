"""A real PostgreSQL server for the desk database tests, started once per test session.

initdb + pg_ctl (Debian's `postgresql` package, linked in /usr/local/bin) into a temporary data directory,
listening on 127.0.0.1 on a free port (and a unix socket in that directory), trust authentication, fsync off.
As root (PostgreSQL refuses to run as root), the server runs as the `postgres` (else `nobody`) user.
`pg_database` gives each caller a fresh, empty database on that server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SEARCH = os.pathsep.join(
    ["/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True), os.environ.get("PATH", "")]
)
BINARIES = ("initdb", "pg_ctl", "postgres")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        self.bins = {name: shutil.which(name, path=SEARCH) for name in BINARIES}
        self.root = Path(tempfile.mkdtemp(prefix="nexotc-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.user is None:  # pragma: no cover - every Debian image has nobody
                raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> None:
        kwargs = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "HOME": str(self.root)}
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
        if proc.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()} {log[-2000:]}")

    def start(self) -> None:
        self._run(self.bins["initdb"], "-D", str(self.data), "-U", "nexotc", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(
            self.bins["pg_ctl"],
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(self.bins["pg_ctl"], "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://nexotc@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "desk_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=nexotc dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    missing = [name for name in BINARIES if shutil.which(name, path=SEARCH) is None]
    if missing:
        # not a skip: the desk store must be tested on a real server (`make test` installs Debian's postgresql)
        pytest.fail(f"PostgreSQL server binaries not installed ({', '.join(missing)}): apt-get install postgresql")
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_server: PgServer) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return pg_server.create_database()
