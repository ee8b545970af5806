"""What every importer shares: the guards that refuse a delivery that looks cut or broken.

A guard refuses what is valid but suspicious; `--force` (force=True) accepts what a guard would
refuse, and nothing else: a delivery with errors is refused whatever the flag says.
"""

from __future__ import annotations

MAX_REMOVAL_SHARE = 0.20  # a full delivery may expire at most this share of what it replaces
MAX_DANGLING_SHARE = 0.01  # of all references; more means a broken or cut delivery


def dangling_refusal(dangling: int, references: int, what: str) -> str | None:
    """The sentence refusing a delivery whose references name too much that is not served, or None."""
    if dangling and dangling > MAX_DANGLING_SHARE * references:
        return (
            f"refused: {dangling:,} of {references:,} references point at {what}, more than the "
            f"{MAX_DANGLING_SHARE:.0%} allowed; the delivery looks cut or broken (use --force to import it anyway)"
        )
    return None
