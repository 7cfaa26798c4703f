"""KYC/KYB issuer tools and holder files, on top of `nexotc_client.zk` (Poseidon tree, credentials).

An issuer keeps a directory (default `<nexotc home>/issuer`):

    tree.json           the persisted PoseidonTree (depth 20) of credential leaves
    credentials.json    index => the credential as issued (no secret: only its commitment), holder label,
                        revoked flag; the issuer's own record of who it vouched for; the issuer's address
                        once known; per registry, the root this tree last published there (and how many
                        live credentials it had)

    store = IssuerStore.create(path)                         # a new, empty tree (refuses an existing one)
    store = IssuerStore.load(path)                           # an existing tree (refuses a missing one)
    store = IssuerStore.open(path)                           # either (library use: open or create)
    issued = store.issue(Credential(secret_commitment=c, entity_type=1, jurisdiction=756, ...), holder="alice")
    issued.holder_file().save("alice.credential.json")      # what the holder gets: credential + path
    store.revoke(index)                                      # the leaf becomes 0: publish the new root
    registry.publish_root(store.root, sender=issuer)         # nexotc_client.chain.kyc
    store.record_published(registry.address, store.root, tx_hash, block)

A holder keeps its secret (`HolderSecret`, never sent anywhere) and the credential file from the issuer.
A path is valid for the root it was computed under: after the issuer publishes a newer root, the old
root stays valid for the registry's root window; then the holder asks for a fresh path
(`store.holder_file(index)`).

Proof files (`ProofFile`) keep the proof with the private values the holder needs later for a selective
disclosure (the audit salts), so they stay with the holder; `Disclosure` is what the holder hands an
auditor: chosen audited fields with their salts, the hashes of the others.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexotc_client.chain.errors import NexotcError
from nexotc_client.safejson import load_json

DEFAULT_DEPTH = 20
TREE_FILE = "tree.json"
CREDENTIALS_FILE = "credentials.json"
FORMAT = "nexotc-kyc/1"


def _write_json(path: Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _read_json(path: Path | str, what: str) -> dict[str, Any]:
    try:
        data = load_json(Path(path).read_text())
    except FileNotFoundError:
        raise NexotcError(f"{what}: no such file {path}") from None
    except (OSError, ValueError) as exc:
        raise NexotcError(f"{what}: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise NexotcError(f"{what}: {path} is not a JSON object")
    return data


def _check_kind(data: dict[str, Any], kind: str, path: Path | str) -> None:
    if data.get("kind") != kind:
        raise NexotcError(f"{path} is not a {kind.replace('_', ' ')} file (kind {data.get('kind')!r})")


# --------------------------------------------------------------------- holder
@dataclass(frozen=True)
class HolderSecret:
    """The holder's secret: only its Poseidon commitment goes to the issuer."""

    secret: int

    @classmethod
    def generate(cls) -> HolderSecret:
        from nexotc_client.zk.credential import random_field

        return cls(random_field())

    @property
    def commitment(self) -> int:
        from nexotc_client.zk.credential import secret_commitment

        return secret_commitment(self.secret)

    def save(self, path: Path | str) -> Path:
        """The secret, and its commitment (read back by `kyc secret --show`; checked on load)."""
        data = {
            "format": FORMAT,
            "kind": "holder_secret",
            "secret": str(self.secret),
            "commitment": str(self.commitment),
        }
        path = _write_json(Path(path), data)
        os.chmod(path, 0o600)
        return path

    @classmethod
    def load(cls, path: Path | str) -> HolderSecret:
        from nexotc_client.zk.poseidon import P

        data = _read_json(path, "holder secret")
        _check_kind(data, "holder_secret", path)
        try:
            secret = int(data["secret"])
        except (KeyError, TypeError, ValueError) as exc:
            raise NexotcError(f"holder secret file {path} is malformed: {exc}") from exc
        if not 0 < secret < P:
            raise NexotcError(f"holder secret file {path} is malformed: the secret is not a field element")
        holder = cls(secret)
        stored = data.get("commitment")  # files written before it was stored have none
        if stored is not None and str(stored).strip() != str(holder.commitment):
            raise NexotcError(
                f"holder secret file {path} is inconsistent: its commitment field {stored} is not its secret's "
                f"commitment {holder.commitment} (the file was edited?)"
            )
        return holder


@dataclass(frozen=True)
class HolderFile:
    """What an issuer hands a holder: the credential (no secret), its leaf index and Merkle path."""

    issuer: str | None
    credential: Any  # nexotc_client.zk.credential.Credential
    index: int
    path: Any  # nexotc_client.zk.merkle.MerklePath

    @property
    def root(self) -> int:
        return int(self.path.root)

    def with_secret(self, secret: HolderSecret) -> Any:
        """The credential with the holder's secret (checked against the commitment)."""
        from nexotc_client.zk.credential import Credential

        data = self.credential.to_json(include_secret=False)
        data["secret"] = str(secret.secret)
        try:
            return Credential.from_json(data)
        except ValueError as exc:
            raise NexotcError(f"this secret does not belong to the credential: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": "credential",
            "issuer": self.issuer,
            "index": self.index,
            "credential": self.credential.to_json(include_secret=False),
            "path": self.path.to_json(),
        }

    def save(self, path: Path | str) -> Path:
        return _write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> HolderFile:
        from nexotc_client.zk.credential import Credential
        from nexotc_client.zk.merkle import MerklePath

        data = _read_json(path, "credential")
        _check_kind(data, "credential", path)
        try:
            cred = Credential.from_json(data["credential"])
            merkle = MerklePath.from_json(data["path"])
            index = int(data["index"])
        except (KeyError, TypeError, ValueError) as exc:
            raise NexotcError(f"credential file {path} is malformed: {exc}") from exc
        if merkle.leaf != cred.leaf() or not merkle.verify():
            raise NexotcError(f"credential file {path}: the Merkle path does not match the credential")
        return cls(data.get("issuer"), cred, index, merkle)


# --------------------------------------------------------------------- issuer
@dataclass
class IssuedCredential:
    index: int
    credential: Any
    holder: str
    revoked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "holder": self.holder,
            "revoked": self.revoked,
            "credential": self.credential.to_json(include_secret=False),
        }


@dataclass(frozen=True)
class PublishedRoot:
    """What a tree last published in one registry: the root, its live credentials, the transaction."""

    root: int
    live: int
    tx_hash: str
    block: int

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), "live": self.live, "tx_hash": self.tx_hash, "block": self.block}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublishedRoot:
        return cls(int(data["root"]), int(data["live"]), str(data["tx_hash"]), int(data["block"]))


@dataclass
class IssuerStore:
    """An issuer's tree and register of issued credentials, persisted in `directory`."""

    directory: Path
    tree: Any  # PoseidonTree
    issued: dict[int, IssuedCredential] = field(default_factory=dict)
    issuer: str | None = None
    # registry address => what this tree last published there
    published: dict[str, PublishedRoot] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path | str, depth: int = DEFAULT_DEPTH, issuer: str | None = None) -> IssuerStore:
        """A new, empty issuer tree in `directory` (created if needed); refuses a directory that already
        holds a tree or a register (an issuer's tree is never replaced by an empty one)."""
        directory = Path(directory)
        for name in (TREE_FILE, CREDENTIALS_FILE):
            if (directory / name).exists():
                raise NexotcError(f"{directory} already holds an issuer tree ({name}); it is never replaced")
        if directory.exists() and not directory.is_dir():
            raise NexotcError(f"{directory} is not a directory")
        store = cls.open(directory, depth, issuer)
        store.save()
        return store

    @classmethod
    def load(cls, directory: Path | str) -> IssuerStore:
        """The existing issuer tree in `directory`; refuses a missing directory or one without a tree
        (a wrong directory must never be taken for an empty tree)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise NexotcError(
                f"issuer directory {directory} does not exist (a new issuer creates its tree with "
                f"`nexotc issuer init --issuer-dir {directory}`)"
            )
        if not (directory / TREE_FILE).is_file():
            raise NexotcError(
                f"{directory} holds no issuer tree ({TREE_FILE}): wrong --issuer-dir? (a new issuer creates "
                f"its tree with `nexotc issuer init --issuer-dir {directory}`)"
            )
        return cls.open(directory)

    @classmethod
    def open(cls, directory: Path | str, depth: int = DEFAULT_DEPTH, issuer: str | None = None) -> IssuerStore:
        """Open the issuer directory, or start an empty tree there when it has none (library use; the CLI
        uses `load` and `create`)."""
        from nexotc_client.zk.credential import Credential

        directory = Path(directory)
        tree = _open_tree(directory / TREE_FILE, depth)
        issued: dict[int, IssuedCredential] = {}
        published: dict[str, PublishedRoot] = {}
        meta_issuer = issuer
        creds_path = directory / CREDENTIALS_FILE
        if creds_path.exists():
            data = _read_json(creds_path, "issuer register")
            try:
                meta_issuer = issuer or data.get("issuer")
                for entry in data.get("credentials", []):
                    cred = Credential.from_json(entry["credential"])
                    issued[int(entry["index"])] = IssuedCredential(
                        int(entry["index"]), cred, str(entry.get("holder", "")), bool(entry.get("revoked"))
                    )
                for registry, record in (data.get("published") or {}).items():
                    published[str(registry)] = PublishedRoot.from_json(record)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise NexotcError(f"issuer register {creds_path} is malformed: {exc}") from exc
        store = cls(directory, tree, issued, meta_issuer, published)
        for entry in issued.values():  # the register and the tree must agree
            expected = 0 if entry.revoked else entry.credential.leaf()
            try:
                leaf = tree.leaf(entry.index)
            except (ValueError, IndexError):  # an index the tree cannot hold
                leaf = None
            if leaf != expected:
                raise NexotcError(f"issuer directory {directory}: tree and register disagree at leaf {entry.index}")
        return store

    @property
    def root(self) -> int:
        return int(self.tree.root)

    @property
    def live(self) -> int:
        """Credentials in the tree that are not revoked."""
        return sum(1 for e in self.issued.values() if not e.revoked)

    def save(self) -> None:
        self.tree.save(self.directory / TREE_FILE)
        _write_json(
            self.directory / CREDENTIALS_FILE,
            {
                "format": FORMAT,
                "kind": "issuer_register",
                "issuer": self.issuer,
                "root": str(self.root),
                "credentials": [self.issued[i].to_json() for i in sorted(self.issued)],
                "published": {k: v.to_json() for k, v in sorted(self.published.items())},
            },
        )

    def record_published(self, registry: str, root: int, tx_hash: str, block: int, issuer: str | None = None) -> None:
        """Remember that this tree's `root` (with its current live credentials) was published in `registry`."""
        self.published[registry] = PublishedRoot(int(root), self.live, tx_hash, int(block))
        if issuer is not None and self.issuer is None:
            self.issuer = issuer
        self.save()

    def live_with_commitment(self, commitment: int) -> list[IssuedCredential]:
        return [
            e for _, e in sorted(self.issued.items()) if not e.revoked and e.credential.secret_commitment == commitment
        ]

    def issue(self, credential: Any, holder: str = "", replace: bool = False) -> HolderFile:
        """Insert the credential's leaf, persist, and return the holder's file (credential + path).

        A holder commitment has at most one live credential (else the holder would choose which one to
        prove): a second one is refused unless `replace`, which revokes the earlier leaf(s) in the same
        step (publish the new root to make both effective)."""
        if credential.secret is not None:
            raise NexotcError("an issuer never sees the holder's secret: issue from the secret commitment")
        if credential.secret_commitment == 0:
            raise NexotcError("holder commitment 0 is not a commitment (`nexotc kyc secret` prints the holder's)")
        for entry in self.issued.values():
            if not entry.revoked and entry.credential.leaf() == credential.leaf():
                raise NexotcError(f"this credential is already issued (leaf {entry.index})")
        earlier = self.live_with_commitment(credential.secret_commitment)
        if earlier and not replace:
            leaves = ", ".join(f"#{e.index}" for e in earlier)
            raise NexotcError(
                f"this holder commitment already has a live credential ({leaves}): --replace revokes it and "
                "issues the new one (or revoke it first: `nexotc issuer revoke-credential`)"
            )
        for entry in earlier:
            self.tree.remove(entry.index)
            entry.revoked = True
        index = self.tree.insert(credential.leaf())
        self.issued[index] = IssuedCredential(index, credential, holder)
        self.save()
        return self.holder_file(index)

    def revoke(self, index: int) -> int:
        """Empty the leaf (revocation takes effect once the new root is published); returns the new root."""
        entry = self.issued.get(index)
        if entry is None:
            raise NexotcError(f"no credential at leaf {index}")
        if entry.revoked:
            raise NexotcError(f"the credential at leaf {index} is already revoked")
        self.tree.remove(index)
        entry.revoked = True
        self.save()
        return self.root

    def holder_file(self, index: int) -> HolderFile:
        """A fresh holder file for leaf `index` (its path under the current root)."""
        entry = self.issued.get(index)
        if entry is None:
            raise NexotcError(f"no credential at leaf {index}")
        if entry.revoked:
            raise NexotcError(f"the credential at leaf {index} is revoked")
        return HolderFile(self.issuer, entry.credential, index, self.tree.path(index))


def _open_tree(path: Path, depth: int) -> Any:
    """The PoseidonTree saved at `path` (a new empty one saving there when there is none); any content that is
    not a saved tree is refused as malformed, naming the file, never left to fail later."""
    from nexotc_client.zk.merkle import PoseidonTree

    if not path.exists():
        return PoseidonTree(depth, path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise NexotcError(f"issuer tree {path}: cannot read it: {exc}") from exc
    try:
        data = load_json(text)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        return PoseidonTree.from_json(data, path)
    except KeyError as exc:
        raise NexotcError(f"issuer tree {path}: not an issuer tree (malformed: no {exc} field)") from None
    except (ValueError, TypeError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        raise NexotcError(f"issuer tree {path}: not an issuer tree (malformed: {exc})") from None


# ---------------------------------------------------------------- proof files
@dataclass(frozen=True)
class ProofFile:
    """A proof as the holder keeps it: the proof, the policy id, and the private audit salts."""

    proof: Any  # nexotc_client.zk.prover.Proof
    policy_id: int
    wallet: str
    scope: int
    now: int
    valid_until: int
    credential: Any  # Credential without the secret (for disclosures)
    salts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": "proof",
            "policy_id": self.policy_id,
            "wallet": self.wallet,
            "scope": str(self.scope),
            "now": self.now,
            "valid_until": self.valid_until,
            "proof": self.proof.to_json(),
            "private": {
                "credential": self.credential.to_json(include_secret=False),
                "salts": {k: str(v) for k, v in self.salts.items()},
            },
        }

    def save(self, path: Path | str) -> Path:
        path = _write_json(Path(path), self.to_json())
        os.chmod(path, 0o600)
        return path

    @classmethod
    def load(cls, path: Path | str) -> ProofFile:
        from eth_utils import to_checksum_address

        from nexotc_client.zk.credential import AUDIT_FIELDS, Credential, audit_commitment, unpack_binding
        from nexotc_client.zk.prover import Proof

        data = _read_json(path, "proof")
        _check_kind(data, "proof", path)
        try:
            loaded = cls(
                proof=Proof.from_json(data["proof"]),
                policy_id=int(data["policy_id"]),
                wallet=to_checksum_address(str(data["wallet"])),
                scope=int(data["scope"]),
                now=int(data["now"]),
                valid_until=int(data["valid_until"]),
                credential=Credential.from_json(data["private"]["credential"]),
                salts={k: int(v) for k, v in data["private"]["salts"].items()},
            )
        except KeyError as exc:
            raise NexotcError(f"proof file {path} is malformed: missing {exc}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise NexotcError(f"proof file {path} is malformed: {exc}") from exc
        # the public signals are what the registry checks: the file's own fields must say the same
        wallet, now, valid_until = unpack_binding(loaded.proof.binding)
        signals = {
            "scope": loaded.proof.scope,
            "wallet": to_checksum_address(wallet),
            "now": now,
            "valid_until": valid_until,
        }
        for name, signal in signals.items():
            if getattr(loaded, name) != signal:
                raise NexotcError(
                    f"proof file {path} is inconsistent: its {name} field says {getattr(loaded, name)} but the "
                    f"proof's public signals say {signal} (the file was edited?)"
                )
        # the private part is what later disclosures open: it must reproduce the proof's audit commitment
        missing = [f for f in AUDIT_FIELDS if f not in loaded.salts]
        if missing:
            raise NexotcError(f"proof file {path} is malformed: no salt for {', '.join(missing)}")
        if audit_commitment(loaded.credential, loaded.salts) != loaded.proof.audit_commitment:
            raise NexotcError(
                f"proof file {path} is inconsistent: its credential and salts do not open the proof's audit "
                "commitment (the file was edited?): no disclosure made from it could be verified"
            )
        return loaded

    def disclose(self, fields: list[str]) -> Disclosure:
        """Open the chosen audited fields of this proof's audit commitment."""
        from nexotc_client.zk.credential import open_fields

        try:
            opening = open_fields(self.credential, self.salts, fields)
        except ValueError as exc:
            raise NexotcError(str(exc)) from exc
        return Disclosure(
            subject=self.wallet,
            scope=self.scope,
            audit_commitment=int(self.proof.audit_commitment),
            nullifier=int(self.proof.nullifier),
            opening=opening,
        )


@dataclass(frozen=True)
class Disclosure:
    """A selective disclosure: the opened audited fields of one attestation (subject, scope)."""

    subject: str
    scope: int
    audit_commitment: int
    nullifier: int
    opening: Any  # nexotc_client.zk.credential.AuditOpening

    def verify(self) -> bool:
        from nexotc_client.zk.credential import verify_opening

        return verify_opening(self.audit_commitment, self.opening)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": "disclosure",
            "subject": self.subject,
            "scope": str(self.scope),
            "audit_commitment": str(self.audit_commitment),
            "nullifier": str(self.nullifier),
            "opening": self.opening.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Disclosure:
        from eth_utils import to_checksum_address

        from nexotc_client.zk.credential import AuditOpening

        try:
            return cls(
                subject=to_checksum_address(str(data["subject"])),
                scope=int(data["scope"]),
                audit_commitment=int(data["audit_commitment"]),
                nullifier=int(data["nullifier"]),
                opening=AuditOpening.from_json(data["opening"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NexotcError(f"malformed disclosure: {exc}") from exc

    def save(self, path: Path | str) -> Path:
        return _write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path | str) -> Disclosure:
        data = _read_json(path, "disclosure")
        _check_kind(data, "disclosure", path)
        return cls.from_json(data)


def prove_compliance(
    holder: HolderFile,
    secret: HolderSecret,
    policy: Any,
    policy_id: int,
    scope: int,
    wallet: str,
    now: int,
    valid_until: int,
    progress: bool = True,
) -> ProofFile:
    """Prove that the holder's credential meets `policy` (a zk Policy) in `scope`, bound to `wallet`,
    at `now`, valid until `valid_until`. Refuses up front (NexotcError naming the reason) when the
    credential cannot meet the policy: the circuit would refuse too (no witness exists)."""
    from eth_utils import to_checksum_address

    from nexotc_client.zk.credential import circuit_inputs, new_salts
    from nexotc_client.zk.prover import ProverError, prove

    credential = holder.with_secret(secret)
    problems = policy.violations(credential, now)
    if valid_until > credential.expires_at:
        problems.append("valid until is after the credential expires")
    if valid_until <= now:
        problems.append("valid until is not after now")
    if problems:
        raise NexotcError(f"the credential cannot meet policy #{policy_id}: {'; '.join(problems)}")
    salts = new_salts()
    wallet = to_checksum_address(wallet)
    inputs = circuit_inputs(credential, holder.path, policy, scope, wallet, now, valid_until, salts)
    try:
        proof = prove(inputs, progress=progress)
    except ProverError as exc:
        raise NexotcError(f"proving failed: {exc}") from exc
    return ProofFile(proof, policy_id, wallet, scope, now, valid_until, holder.credential, salts)


__all__ = [
    "Disclosure",
    "HolderFile",
    "HolderSecret",
    "IssuedCredential",
    "IssuerStore",
    "PublishedRoot",
    "ProofFile",
    "prove_compliance",
]
