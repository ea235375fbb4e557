"""db.emails.normalise_email: the one rule that makes two addresses one account."""

from __future__ import annotations

import sys

import pytest

from db.emails import normalise_email


@pytest.mark.parametrize(
    ("spelling", "normalised"),
    [
        ("  Mixed.Case@Example.COM ", "mixed.case@example.com"),
        ("İvan@example.com", "i\u0307van@example.com"),  # full folding, as Python does it
        ("STRAẞE@example.com", "strasse@example.com"),
        ("Straße@example.com", "strasse@example.com"),
        ("ΣΊΣΥΦΟΣ@example.com", "σίσυφοσ@example.com"),
        ("σίσυφος@example.com", "σίσυφοσ@example.com"),
        ("ｊｏｈｎ@ｅｘａｍｐｌｅ.com", "john@example.com"),  # noqa: RUF001 (fullwidth, on purpose)
        ("ﬁle@example.com", "file@example.com"),
        ("Ǆ@example.com", "dž@example.com"),
    ],
)
def test_spellings_normalise_to_one_address(spelling: str, normalised: str) -> None:
    assert normalise_email(spelling) == normalised


def test_normalising_twice_changes_nothing_for_any_code_point() -> None:
    # Every scalar value, alone and between letters: a stored address, normalised
    # again (the rate-limit key does), must stay the same key.
    moved = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if not 0xD800 <= code <= 0xDFFF
        for text in (chr(code), f"a{chr(code)}b@x")
        if normalise_email(normalise_email(text)) != normalise_email(text)
    ]
    assert moved == []
