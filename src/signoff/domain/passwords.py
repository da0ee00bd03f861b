"""Passwords, as NIST SP 800-63B asks: long enough, not known to be common or guessable from
the account, and no composition rules (no "one digit, one symbol"); any printable character,
spaces and Unicode included, up to a length that still hashes quickly.

Hashing is Argon2id (argon2-cffi's defaults follow RFC 9106's second recommendation).
"""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_LENGTH = 256
MIN_LENGTH_WITH_MFA = 8  # 800-63B: a password that is one factor of two
MIN_LENGTH_ALONE = 15  # 800-63B: a password that is the only factor

_hasher = PasswordHasher()
# Verifying against this when there is no account costs the same time as a real check, so
# the answer's timing does not tell whether an email has an account.
_DUMMY_HASH = _hasher.hash("signoff: no such account")

# The most common passwords and patterns in public breach corpora, and what people derive
# from a product's name. 800-63B asks to refuse values "known to be commonly-used, expected,
# or compromised"; this list catches the head of that distribution without a download.
_COMMON_WORDS = """
    password passw0rd p@ssw0rd p@ssword password1 password12 password123 password1234
    qwerty qwertyuiop qwerty123 qwerty1234 asdfghjkl asdfasdf zxcvbnm 1q2w3e4r 1q2w3e4r5t
    1qaz2wsx qazwsxedc abc123 abcd1234 iloveyou letmein welcome welcome1 welcome123 admin
    admin123 administrator monkey dragon football baseball master sunshine princess shadow
    superman trustno1 starwars whatever freedom changeme changeme123 default secret
    secret123 login test test123 testtest guest access azerty azerty123 solo michael
    jennifer hunter2 ninja mustang passpass computer internet samsung summer2024
    summer2025 summer2026 winter2024 winter2025 winter2026 spring2026 autumn2026
    signoff signoff1 signoff123 approve approval approvals
"""
_COMMON = frozenset(_COMMON_WORDS.split())
_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "abcdefghijklmnopqrstuvwxyz")


def normalize(password: str) -> str:
    """NFKC, as 800-63B recommends, so the same password typed on two keyboards matches."""
    return unicodedata.normalize("NFKC", password)


def problems(password: str, *, min_length: int, context: tuple[str, ...] = ()) -> list[str]:
    """Why ``password`` may not be used, in words for the person choosing it; empty: fine.

    ``context`` holds account words (email, name) a guesser would try first."""
    password = normalize(password)
    if len(password) < min_length:
        return [f"Use at least {min_length} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    if not password.isprintable():
        return ["Use only printable characters."]
    folded = password.casefold()
    stripped = folded.rstrip("0123456789!?.")
    if folded in _COMMON or stripped in _COMMON:
        return ["This password is one of the most common ones; choose another."]
    if len(set(folded)) <= 2 or _is_sequence(folded):
        return ["This password is a repeated or sequential pattern; choose another."]
    for word in context:
        word = word.casefold()
        if len(word) >= 4 and word in folded:
            return ["This password contains your name or email; choose another."]
    return []


def _is_sequence(text: str) -> bool:
    return any(text in row or text in row[::-1] or text in row * 3 for row in _KEYBOARD_ROWS)


def hash_password(password: str) -> str:
    return _hasher.hash(normalize(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no stored hash, the same work for the same answer."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, normalize(password)) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """The hash was made with weaker parameters than today's: store a new one at sign-in."""
    return _hasher.check_needs_rehash(stored_hash)
