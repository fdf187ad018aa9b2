#!/usr/bin/env python3
"""anteroom-draw-v1, the draw of a room's pre-queue: a reference in Python.

A second, independent implementation of store/src/draw.rs (see docs/draw.md),
standard library only. Run it with no arguments to print the test vectors;
`python3 docs/draw.py SEED_HEX P TICKET` prints one ticket's place.
"""

import hashlib
import hmac
import sys

ALGORITHM = "anteroom-draw-v1: Feistel-HMAC-SHA256, 8 rounds, cycle-walking"
TAG = b"anteroom-draw-v1"
ROUNDS = 8


def half_bits(p):
    """h: the domain is 0 .. 2**(2*h), the smallest even-bit one (>= 2 bits) holding 0 .. p."""
    return max(1, ((p - 1).bit_length() + 1) // 2)


def f(seed, p, rnd, half, h):
    message = TAG + p.to_bytes(8, "big") + bytes([rnd]) + half.to_bytes(8, "big")
    mac = hmac.new(seed, message, hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") & ((1 << h) - 1)


def encrypt(seed, p, x):
    h = half_bits(p)
    left, right = x >> h, x & ((1 << h) - 1)
    for rnd in range(ROUNDS):
        left, right = right, left ^ f(seed, p, rnd, right, h)
    return (left << h) | right


def decrypt(seed, p, y):
    h = half_bits(p)
    left, right = y >> h, y & ((1 << h) - 1)
    for rnd in reversed(range(ROUNDS)):
        left, right = right ^ f(seed, p, rnd, left, h), left
    return (left << h) | right


def place(seed, p, ticket):
    """Ticket `ticket`'s place (1..p) in the draw; seed is 32 bytes."""
    assert 1 <= ticket <= p
    x = encrypt(seed, p, ticket - 1)
    while x >= p:  # cycle-walking
        x = encrypt(seed, p, x)
    return x + 1


def ticket_at(seed, p, place_):
    """The ticket at place `place_`: the inverse of place()."""
    assert 1 <= place_ <= p
    y = decrypt(seed, p, place_ - 1)
    while y >= p:
        y = decrypt(seed, p, y)
    return y + 1


def commitment(seed):
    return hashlib.sha256(seed).hexdigest()


VECTOR_SEEDS = [
    "00" * 32,
    bytes(range(32)).hex(),
    hashlib.sha256(b"anteroom test seed").hexdigest(),
]
VECTOR_CASES = [(1, 1), (2, 1), (2, 2), (10, 1), (10, 7), (10, 10), (1000, 1), (1000, 500),
                (10_000, 9_999), (1_000_000_000, 1), (1_000_000_000, 123_456_789),
                (2**64 - 1, 2**63)]

if __name__ == "__main__":
    if len(sys.argv) == 4:
        print(place(bytes.fromhex(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
        sys.exit(0)
    for seed_hex in VECTOR_SEEDS:
        seed = bytes.fromhex(seed_hex)
        print(f"seed {seed_hex} commitment {commitment(seed)}")
        for p, ticket in VECTOR_CASES:
            where = place(seed, p, ticket)
            assert ticket_at(seed, p, where) == ticket
            print(f"  P {p} ticket {ticket} place {where}")
