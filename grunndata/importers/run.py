"""What every importer shares: the result's common part, the refusal, and the guards that refuse a
delivery that looks cut or broken.

An import builds one release (store.ReleaseBuilder) and either activates it (`RunResult.activate`;
with `--stage` it is kept staged instead, for review, until `activate_staged`) or refuses it (`refuse`: the release is kept as failed, with why, and nothing served changes). A
guard refuses what is valid but suspicious; `--force` (force=True) accepts what a guard would
refuse, and nothing else: a delivery with errors is refused whatever the flag says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from grunndata.errors import DeliveryError
from grunndata.store import R4Bodies, activate, rollback
from grunndata.translators.safest.to_r4 import R4_OF_R5, r4_json

R4_BODIES = R4Bodies(frozenset(R4_OF_R5), r4_json)
"""Every import has the R4 body of each new version of a SAFEST type made and stored at activation
(what /fhir-r4 sends): a first R4 read then costs what a first R5 read does (benchmarks/RESULTS.md)."""

MAX_REMOVAL_SHARE = 0.20  # a full delivery may expire at most this share of what it replaces
MAX_DANGLING_SHARE = 0.01  # of all references; more means a broken or cut delivery


class Release(Protocol):
    """The part of store.ReleaseBuilder an import ends with."""

    stage: bool

    def finish(self, hentet_dato: str | None, report: dict[str, Any]) -> int | None: ...

    def fail(self, message: str, report: dict[str, Any]) -> None: ...


MAX_REPORTED = 10_000
"""Problems, warnings or disagreements a release report keeps of each kind (the counts are whole):
`grunndata releases show N` lists them; beyond this a broken delivery would make the report huge."""


@dataclass(kw_only=True)
class RunResult:
    """What every import did; `release_id` is None for a dry run, a refusal, or no change."""

    file: str
    started: float = field(default_factory=time.monotonic, repr=False, compare=False)
    release_id: int | None = None
    based_on: int | None = None
    dry_run: bool = False
    staged: bool = False  # the release was kept staged (`--stage`), not activated
    resources: dict[str, dict[str, int]] = field(default_factory=dict)  # FHIR type -> new, changed...
    seconds: float = 0.0
    refused: str | None = None  # the sentence, when the delivery was refused
    content_filters: dict[str, Any] | None = None  # national: what each H-resept filter excludes

    @property
    def changed_nothing(self) -> bool:
        return self.release_id is None and not self.dry_run and self.refused is None

    def as_report(self) -> dict[str, Any]:
        raise NotImplementedError

    def activate(self, release: Release, hentet_dato: str | None = None) -> None:
        """Make the release the active one, or with `stage` keep it staged (a dry run or an unchanged
        delivery makes none)."""
        self.seconds = time.monotonic() - self.started
        self.release_id = release.finish(hentet_dato, self.as_report())
        self.staged = release.stage and self.release_id is not None
        self.seconds = time.monotonic() - self.started


def activate_staged(engine: Any, release_id: int) -> Any:
    """Make staged release `release_id` active as an import's end would (its R4 bodies made as every
    import has them made); returns its row. The CLI's `activate` and the API's use this one."""
    return activate(engine, release_id, R4_BODIES)


def rollback_to(engine: Any, release_id: int) -> Any:
    """Serve release `release_id`'s data again as a new release of its line (store `rollback`), the
    R4 bodies of the versions it writes made as every import has them made; returns its row."""
    return rollback(engine, release_id, R4_BODIES)


def refuse(
    release: Release, result: RunResult, sentence: str, error: DeliveryError | None = None
) -> NoReturn:
    """Throw the release away, keep why (and the report) with its record, and raise `error`, a
    DeliveryError saying `sentence` unless the importer has a richer one; the error carries the report."""
    result.refused = sentence
    result.seconds = time.monotonic() - result.started
    error = error if error is not None else DeliveryError(sentence)
    error.report = result.as_report()
    release.fail(sentence, error.report)
    raise error


def shrink_refusal(
    before: Mapping[str, int], expired: Mapping[str, int], sentence: Callable[[str, int, int], str]
) -> str | None:
    """The refusal of a delivery that would expire more than MAX_REMOVAL_SHARE of what a type served
    (`sentence(type, expired, before)` says it in the importer's words), or None."""
    for rtype, n in sorted(before.items()):
        gone = expired.get(rtype, 0)
        if n and gone / n > MAX_REMOVAL_SHARE:
            return sentence(rtype, gone, n)
    return None


def dangling_refusal(dangling: int, references: int, what: str) -> str | None:
    """The sentence refusing a delivery whose references name too much that is not served, or None."""
    if dangling and dangling > MAX_DANGLING_SHARE * references:
        return (
            f"refused: {dangling:,} of {references:,} references point at {what}, more than the "
            f"{MAX_DANGLING_SHARE:.0%} allowed; the delivery looks cut or broken (use --force to import it anyway)"
        )
    return None
