"""Binary Poseidon Merkle tree of credential leaves (node = Poseidon([left, right]), empty leaf = 0).

Sparse: only nodes that differ from the empty subtree of their level are kept (the empty-subtree hashes
are precomputed), so a depth-20 tree with n leaves holds about 20 n nodes. Persisted as JSON
(`save()` / `PoseidonTree.load()`), written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nexotc_client.zk.poseidon import P, poseidon

DEPTH = 20


@cache
def zero_hashes(depth: int = DEPTH) -> tuple[int, ...]:
    """zeros[i] = root of an empty subtree of height i (zeros[0] = 0, the empty leaf)."""
    z = [0]
    for _ in range(depth):
        z.append(poseidon([z[-1], z[-1]]))
    return tuple(z)


@dataclass(frozen=True)
class MerklePath:
    """Inclusion path of `leaf` at `index`: siblings from the leaf level up, indices = bits of index."""

    index: int
    leaf: int
    siblings: tuple[int, ...]
    root: int

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple((self.index >> i) & 1 for i in range(len(self.siblings)))

    def compute_root(self) -> int:
        cur = self.leaf
        for bit, sib in zip(self.indices, self.siblings, strict=True):
            cur = poseidon([sib, cur] if bit else [cur, sib])
        return cur

    def verify(self) -> bool:
        return self.compute_root() == self.root

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "leaf": str(self.leaf),
            "siblings": [str(s) for s in self.siblings],
            "root": str(self.root),
        }

    @classmethod
    def from_json(cls, d: dict) -> MerklePath:
        return cls(int(d["index"]), int(d["leaf"]), tuple(int(s) for s in d["siblings"]), int(d["root"]))


class PoseidonTree:
    """Sparse binary Poseidon Merkle tree with `depth` levels (2^depth leaves)."""

    def __init__(self, depth: int = DEPTH, path: Path | str | None = None) -> None:
        if not 1 <= depth <= 32:
            raise ValueError("depth must be 1..32")
        self.depth = depth
        self.file = Path(path) if path else None
        self.next_index = 0  # first never-used leaf index (insert appends here)
        self._zeros = zero_hashes(depth)
        # _nodes[level][index] for nodes that differ from the empty subtree; level 0 = leaves
        self._nodes: list[dict[int, int]] = [{} for _ in range(depth + 1)]

    # ------------------------------------------------------------------ reads
    def node(self, level: int, index: int) -> int:
        return self._nodes[level].get(index, self._zeros[level])

    @property
    def root(self) -> int:
        return self.node(self.depth, 0)

    def leaf(self, index: int) -> int:
        self._check_index(index)
        return self.node(0, index)

    def __len__(self) -> int:
        """Number of non-empty leaves."""
        return len(self._nodes[0])

    def leaves(self) -> dict[int, int]:
        return dict(sorted(self._nodes[0].items()))

    def index_of(self, leaf: int) -> int:
        for i, v in self._nodes[0].items():
            if v == leaf:
                return i
        raise KeyError("leaf not in the tree")

    def path(self, index: int) -> MerklePath:
        self._check_index(index)
        siblings = tuple(self.node(level, (index >> level) ^ 1) for level in range(self.depth))
        return MerklePath(index, self.leaf(index), siblings, self.root)

    # ----------------------------------------------------------------- writes
    def insert(self, leaf: int) -> int:
        """Append a leaf at the next free index; returns the index."""
        if self.next_index >= 1 << self.depth:
            raise ValueError("tree is full")
        index = self.next_index
        self.update(index, leaf)
        return index

    def update(self, index: int, leaf: int) -> None:
        """Set the leaf at `index` (any index; insert keeps appending after the highest index used)."""
        self._check_index(index)
        if not 0 <= leaf < P:
            raise ValueError("leaf outside the BN254 scalar field")
        self.next_index = max(self.next_index, index + 1)
        self._set(0, index, leaf)
        for level in range(self.depth):
            index >>= 1
            left, right = self.node(level, 2 * index), self.node(level, 2 * index + 1)
            self._set(level + 1, index, poseidon([left, right]))

    def remove(self, index: int) -> None:
        """Revoke: the leaf becomes empty (0); the index is not reused by insert."""
        self.update(index, 0)

    def _set(self, level: int, index: int, value: int) -> None:
        if value == self._zeros[level]:
            self._nodes[level].pop(index, None)
        else:
            self._nodes[level][index] = value

    def _check_index(self, index: int) -> None:
        if not 0 <= index < 1 << self.depth:
            raise IndexError(f"leaf index {index} outside a depth-{self.depth} tree")

    # ------------------------------------------------------------ persistence
    def to_json(self) -> dict:
        return {
            "depth": self.depth,
            "next_index": self.next_index,
            "root": str(self.root),
            "nodes": [{str(i): hex(v) for i, v in sorted(level.items())} for level in self._nodes],
        }

    @classmethod
    def from_json(cls, d: dict, path: Path | str | None = None, check: bool = False) -> PoseidonTree:
        """Rebuild a saved tree; `check=True` also recomputes every stored node (n * depth hashes)."""
        tree = cls(int(d["depth"]), path)
        tree.next_index = int(d["next_index"])
        tree._nodes = [{int(i): int(v, 16) for i, v in level.items()} for level in d["nodes"]]
        if len(tree._nodes) != tree.depth + 1 or str(tree.root) != d["root"]:
            raise ValueError("corrupt tree file (root mismatch)")
        if check and not tree.consistent():
            raise ValueError("corrupt tree file (a node does not match its children)")
        return tree

    def consistent(self) -> bool:
        """True when every internal node is the hash of its children (recomputed from the leaves up)."""
        for level in range(self.depth):
            parents = {i >> 1 for i in self._nodes[level]} | set(self._nodes[level + 1])
            for i in parents:
                if poseidon([self.node(level, 2 * i), self.node(level, 2 * i + 1)]) != self.node(level + 1, i):
                    return False
        return True

    def save(self, path: Path | str | None = None) -> Path:
        target = Path(path) if path else self.file
        if target is None:
            raise ValueError("no path to save the tree to")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        os.replace(tmp, target)
        self.file = target
        return target

    @classmethod
    def load(cls, path: Path | str, check: bool = False) -> PoseidonTree:
        return cls.from_json(json.loads(Path(path).read_text()), path, check)

    @classmethod
    def open(cls, path: Path | str, depth: int = DEPTH) -> PoseidonTree:
        """Load the tree at `path`, or a new empty one that saves there."""
        p = Path(path)
        return cls.load(p) if p.exists() else cls(depth, p)
