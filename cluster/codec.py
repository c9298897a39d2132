"""The wire form of store operations: msgpack lists that the Raft log sees as bytes.

Only plain data crosses into the Raft log (STYLE: no pickled objects), so every
operation is a short list whose first element is an opcode. The proposer
encodes a whole group-commit batch once; ``apply`` decodes it once.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import msgpack

__all__ = [
    "OP_NOOP",
    "OP_PUT",
    "OP_DELETE",
    "OP_DELETE_PREFIX",
    "OP_TXN",
    "OP_LEASE_GRANT",
    "OP_LEASE_KEEPALIVE",
    "OP_LEASE_REVOKE",
    "OP_LEASE_EXPIRE",
    "Op",
    "Compare",
    "put_op",
    "delete_op",
    "delete_prefix_op",
    "txn_op",
    "compare",
    "encode_batch",
    "decode_batch",
]

OP_NOOP = 0
OP_PUT = 1
OP_DELETE = 2
OP_DELETE_PREFIX = 3
OP_TXN = 4
OP_LEASE_GRANT = 5
OP_LEASE_KEEPALIVE = 6
OP_LEASE_REVOKE = 7
OP_LEASE_EXPIRE = 8

Op = list[Any]
Compare = list[Any]

CompareTarget = Literal["mod", "create", "version", "value", "lease"]
CompareOp = Literal["==", "!=", "<", ">"]


def put_op(key: str, value: bytes, lease: int = 0, *, only_if_absent: bool = False) -> Op:
    """A put; ``only_if_absent`` turns it into an atomic create."""
    return [OP_PUT, key, value, lease, only_if_absent]


def delete_op(key: str) -> Op:
    return [OP_DELETE, key]


def delete_prefix_op(prefix: str) -> Op:
    return [OP_DELETE_PREFIX, prefix]


def compare(key: str, target: CompareTarget, op: CompareOp, value: Any) -> Compare:
    """A transaction guard; a missing key has mod/create/version 0 and value None."""
    return [key, target, op, value]


def txn_op(compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> Op:
    """All compares hold → apply ``success`` atomically, else ``failure``.

    Nested transactions are not allowed; the state machine rejects them.
    """
    return [OP_TXN, list(compares), list(success), list(failure)]


def encode_batch(ops: Sequence[Op]) -> bytes:
    return msgpack.packb(list(ops), use_bin_type=True)


def decode_batch(payload: bytes) -> list[Op]:
    ops = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=False)
    if not isinstance(ops, list):
        raise ValueError("batch is not a list")
    return ops
