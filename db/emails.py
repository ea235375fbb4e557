"""The one email normalisation: what makes two addresses the same account.

Python's `str.lower()` and Postgres's `lower()` disagree (on `İ`, for one), so the
comparison is never left to the database: `normalise_email` runs once, in Python, and
its result is stored in `users.email_normalised` (uniquely indexed) and used for every
lookup and for the per-account rate-limit key.
"""

from __future__ import annotations

import unicodedata
from typing import NewType

NormalisedEmail = NewType("NormalisedEmail", str)

# The column's width. Normalising can lengthen an address (`ß` -> `ss`, one
# ligature -> 18 letters); an address whose normalised form is longer is refused.
NORMALISED_EMAIL_MAX_LENGTH = 254


def normalise_email(address: str) -> NormalisedEmail:
    """The address as compared: NFKC, full Unicode case folding, NFKC again, trimmed.

    Applied to the whole address (local part and domain alike). Idempotent: normalising
    a normalised address returns it unchanged, so callers may pass either.
    """
    # Case folding can undo NFKC (`ǰ` folds to `j` plus a combining caron), and NFKC
    # can turn a symbol into a space plus a combining mark: hence NFKC twice, and the
    # trim last.
    folded = unicodedata.normalize("NFKC", address).casefold()
    return NormalisedEmail(unicodedata.normalize("NFKC", folded).strip())
