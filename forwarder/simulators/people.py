"""A small, seeded cast of people shared by the simulated datasets."""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "Alice", "Bruno", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Kenji", "Léa", "Mateo", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tanya",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Okafor", "Nguyen", "Schmidt", "Rossi", "Dubois", "Kowalski", "Tanaka",
    "García", "Larsen", "Haddad", "Moreau", "Silva", "Novak", "Bernard", "Ivanova",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Person:
    """One member of the simulated organization."""

    display_name: str
    email: str


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters only (emails must not carry accents)."""
    table = str.maketrans("éèçàíóúñ", "eecaioun")
    return "".join(ch for ch in text.lower().translate(table) if ch.isascii() and ch.isalpha())


def build_people(seed: str, domain: str, size: int = 16) -> tuple[Person, ...]:
    """``size`` distinct people with deterministic names and emails at ``domain``."""
    rng = random.Random(f"{seed}:people")
    pairs = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    chosen = rng.sample(pairs, size)
    return tuple(
        Person(f"{first} {last}", f"{ascii_slug(first)}.{ascii_slug(last)}@{domain}")
        for first, last in chosen
    )
