"""RFC 9162 Merkle trees: audit.merkle and the verifier's accumulator against a reference.

The reference below is the RFC's recursive definition written out literally (MTH, PATH and
PROOF of section 2.1), independent of the iterative code under test.
"""

import hashlib

import pytest

from audit import merkle
from audit.verifier import MerkleAccumulator


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + leaves[0])
    k = _k(n)
    return _sha(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], complete), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


LEAVES = [_sha(f"event {i}".encode()) for i in range(70)]


def _flip(node: bytes, position: int = 0) -> bytes:
    return node[:position] + bytes([node[position] ^ 0x01]) + node[position + 1:]


# --- roots -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(71))
def test_tree_root_equals_the_recursive_definition(n):
    assert merkle.tree_root(LEAVES[:n]) == ref_mth(LEAVES[:n])


def test_root_of_the_empty_tree_is_the_hash_of_the_empty_string():
    assert merkle.tree_root([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_leaf_and_node_hashes_are_domain_separated():
    leaf = LEAVES[0]
    assert merkle.leaf_hash(leaf) == _sha(b"\x00" + leaf)
    assert merkle.node_hash(leaf, leaf) == _sha(b"\x01" + leaf + leaf)
    assert merkle.leaf_hash(leaf + leaf) != merkle.node_hash(leaf, leaf)


def test_root_of_leaves_of_any_length_equals_the_reference():
    leaves = [bytes(range(i % 7)) * i for i in range(23)]
    assert merkle.tree_root(leaves) == ref_mth(leaves)


def test_accumulator_root_equals_the_reference_for_every_prefix():
    accumulator = MerkleAccumulator()
    assert accumulator.root() == ref_mth([])
    for n, leaf in enumerate(LEAVES, 1):
        accumulator.append(leaf)
        assert accumulator.size == n
        assert accumulator.root() == ref_mth(LEAVES[:n]), f"prefix of {n} leaves"


# --- inclusion proofs --------------------------------------------------------------------------

INCLUSION_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 70]


@pytest.mark.parametrize("n", INCLUSION_SIZES)
def test_inclusion_proof_of_every_leaf_matches_the_reference_and_verifies(n):
    leaves, root = LEAVES[:n], ref_mth(LEAVES[:n])
    for index in range(n):
        proof = merkle.inclusion_proof(index, leaves)
        assert proof == ref_path(index, leaves), f"leaf {index} of {n}"
        assert merkle.verify_inclusion(index, n, leaves[index], proof, root), f"leaf {index} of {n}"


@pytest.mark.parametrize("n", INCLUSION_SIZES)
def test_inclusion_proof_fails_for_a_wrong_leaf_index_root_or_truncated_path(n):
    leaves, root = LEAVES[:n], ref_mth(LEAVES[:n])
    for index in range(n):
        proof = merkle.inclusion_proof(index, leaves)
        leaf = leaves[index]
        assert not merkle.verify_inclusion(index, n, _flip(leaf), proof, root)
        assert not merkle.verify_inclusion(index, n, _sha(b"not in the tree"), proof, root)
        assert not merkle.verify_inclusion(index, n, leaf, proof, _flip(root, 31))
        assert not merkle.verify_inclusion(index, n, leaf, proof, ref_mth([*leaves, leaf]))
        for wrong in {index - 1, index + 1, n - 1 - index} - {index}:
            if 0 <= wrong < n:
                assert not merkle.verify_inclusion(wrong, n, leaf, proof, root), (index, wrong)
        assert not merkle.verify_inclusion(n, n, leaf, proof, root)  # index beyond the tree
        if proof:
            assert not merkle.verify_inclusion(index, n, leaf, proof[:-1], root)
            assert not merkle.verify_inclusion(index, n, leaf, proof[1:], root)
            assert not merkle.verify_inclusion(index, n, leaf, [*proof, proof[-1]], root)
            for position in range(len(proof)):
                tampered = [*proof]
                tampered[position] = _flip(tampered[position])
                assert not merkle.verify_inclusion(index, n, leaf, tampered, root)
        else:
            assert not merkle.verify_inclusion(index, n, leaf, [root], root)


def test_inclusion_proof_refuses_an_index_outside_the_tree():
    with pytest.raises(ValueError):
        merkle.inclusion_proof(3, LEAVES[:3])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(-1, LEAVES[:3])


# --- consistency proofs ------------------------------------------------------------------------

PAIRS = [(m, n) for n in range(1, 41) for m in range(1, n + 1)]


def test_consistency_proofs_match_the_reference_and_verify_for_all_sizes_up_to_40():
    for m, n in PAIRS:
        leaves = LEAVES[:n]
        proof = merkle.consistency_proof(m, leaves)
        assert proof == ref_subproof(m, leaves, True), (m, n)
        assert merkle.verify_consistency(m, n, ref_mth(leaves[:m]), ref_mth(leaves), proof), (m, n)


def test_consistency_proof_fails_for_a_wrong_old_size():
    for m, n in PAIRS:
        leaves = LEAVES[:n]
        old_root, new_root = ref_mth(leaves[:m]), ref_mth(leaves)
        proof = merkle.consistency_proof(m, leaves)
        for wrong in (m - 1, m + 1):
            if 1 <= wrong <= n:
                assert not merkle.verify_consistency(wrong, n, old_root, new_root, proof), (m, wrong, n)


def test_consistency_proof_fails_for_a_tampered_node_or_root():
    for m, n in PAIRS:
        leaves = LEAVES[:n]
        old_root, new_root = ref_mth(leaves[:m]), ref_mth(leaves)
        proof = merkle.consistency_proof(m, leaves)
        for position in range(len(proof)):
            tampered = [*proof]
            tampered[position] = _flip(tampered[position], position % 32)
            assert not merkle.verify_consistency(m, n, old_root, new_root, tampered), (m, n, position)
        assert not merkle.verify_consistency(m, n, _flip(old_root), new_root, proof), (m, n)
        assert not merkle.verify_consistency(m, n, old_root, _flip(new_root), proof), (m, n)
        if proof:
            assert not merkle.verify_consistency(m, n, old_root, new_root, proof[:-1]), (m, n)
        if m < n:
            other = ref_mth([*leaves[: m - 1], _flip(leaves[m - 1])])  # a different old history
            assert not merkle.verify_consistency(m, n, other, new_root, proof), (m, n)


def test_consistency_proof_refuses_sizes_outside_the_tree():
    with pytest.raises(ValueError):
        merkle.consistency_proof(0, LEAVES[:4])
    with pytest.raises(ValueError):
        merkle.consistency_proof(5, LEAVES[:4])
