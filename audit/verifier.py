"""Verify an organization's audit chain and its signed checkpoints. Pure Python, no Django.

`manage.py audit_verify` feeds it rows from the database; `python -m audit.offline` feeds it
an export file. Both get the same verdict, naming the first bad sequence number.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from audit.chain import GENESIS_HASH, event_hash
from audit.merkle import EMPTY_ROOT, leaf_hash, node_hash
from audit.notes import Checkpoint


class MerkleAccumulator:
    """Appends leaves and gives the RFC 9162 root of all leaves so far in O(log n)."""

    def __init__(self):
        self.size = 0
        self._frontier: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees

    def append(self, leaf: bytes) -> None:
        height, node = 0, leaf_hash(leaf)
        while self._frontier and self._frontier[-1][0] == height:
            _, left = self._frontier.pop()
            height, node = height + 1, node_hash(left, node)
        self._frontier.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._frontier:
            return EMPTY_ROOT
        root = self._frontier[-1][1]
        for _, left in reversed(self._frontier[:-1]):
            root = node_hash(left, root)
        return root


@dataclass
class Verdict:
    ok: bool = True
    events: int = 0
    checkpoints: int = 0
    first_bad_seq: int | None = None
    reason: str = ""
    problems: list[str] = field(default_factory=list)

    def fail(self, seq: int, reason: str) -> None:
        if self.ok:
            self.ok, self.first_bad_seq, self.reason = False, seq, reason
        self.problems.append(f"#{seq}: {reason}")

    def as_dict(self) -> dict:
        return {"ok": self.ok, "events": self.events, "checkpoints": self.checkpoints,
                "first_bad_seq": self.first_bad_seq, "reason": self.reason}


def verify_chain(
    events: Iterable[dict],
    checkpoints: Iterable[Checkpoint] = (),
    expected_size: int | None = None,
) -> Verdict:
    """Check sequence, links and hashes of `events` (in seq order), then each checkpoint's
    root over the prefix it covers, then `expected_size` (the chain head's count, if known)."""
    verdict = Verdict()
    by_size: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        by_size.setdefault(checkpoint.size, []).append(checkpoint)
    verdict.checkpoints = sum(len(v) for v in by_size.values())
    tree, prev, covered = MerkleAccumulator(), GENESIS_HASH, 0
    _check_checkpoints_at(0, tree, prev, by_size, verdict, covered)
    for record in events:
        expected_seq = verdict.events + 1
        if record.get("seq") != expected_seq:
            verdict.fail(expected_seq, f"missing or out of order (found #{record.get('seq')} here)")
            break
        if record.get("prev_hash") != prev:
            verdict.fail(expected_seq, "prev_hash does not link to the previous event")
            break
        digest = _hash_of(prev, record)
        if digest is None or digest != record.get("hash"):
            verdict.fail(expected_seq, "content does not match its hash (changed after writing)")
            break
        prev = record["hash"]
        tree.append(bytes.fromhex(prev))
        verdict.events = expected_seq
        if expected_seq in by_size:
            covered = _check_checkpoints_at(expected_seq, tree, prev, by_size, verdict, covered)
            if not verdict.ok:
                break
    if verdict.ok:
        _check_tail(verdict, by_size, expected_size)
    return verdict


def _hash_of(prev: str, record: dict) -> str | None:
    """The event's hash, or None when a field is missing or holds what canonical JSON cannot
    (a tampered record must be named, not crash the verifier)."""
    try:
        return event_hash(prev, record)
    except (KeyError, TypeError, ValueError):
        return None


def _check_checkpoints_at(size, tree, chain_hash, by_size, verdict, covered) -> int:
    """Compare the checkpoints of this size with the tree so far. A forged tail that re-chains
    correctly still changes the root, but no single event shows it: the first event not
    covered by an intact checkpoint is the earliest that can be named."""
    for checkpoint in by_size.get(size, []):
        recorded_chain = checkpoint.extension("chain")
        if checkpoint.root != tree.root() or recorded_chain not in (None, chain_hash):
            verdict.fail(covered + 1, f"events #{covered + 1}..#{size} do not match the signed "
                                      f"checkpoint of size {size} (rewritten history)")
            return covered
    return size


def _check_tail(verdict: Verdict, by_size: dict, expected_size: int | None) -> None:
    beyond = [size for size in by_size if size > verdict.events]
    if beyond:
        verdict.fail(verdict.events + 1, f"missing: a signed checkpoint covers {max(beyond)} "
                                         f"events, only {verdict.events} are present (truncated)")
    elif expected_size is not None and expected_size != verdict.events:
        verdict.fail(min(expected_size, verdict.events) + 1,
                     f"the chain head records {expected_size} events, {verdict.events} present")
