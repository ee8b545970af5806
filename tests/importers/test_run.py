"""The import skeleton every importer shares: the result's common part, the refusal, the guards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from grunndata.errors import DeliveryError
from grunndata.importers.run import RunResult, dangling_refusal, refuse, shrink_refusal


@dataclass(kw_only=True)
class _Result(RunResult):
    rows: int = 0

    def as_report(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "refused": self.refused}


@dataclass
class _Release:
    finished: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    failed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    release_id: int | None = 7
    stage: bool = False

    def finish(self, hentet_dato: str | None, report: dict[str, Any]) -> int | None:
        self.finished.append((hentet_dato, report))
        return self.release_id

    def fail(self, message: str, report: dict[str, Any]) -> None:
        self.failed.append((message, report))


def _sentence(rtype: str, gone: int, n: int) -> str:
    return f"{rtype}: {gone} of {n}"


def test_a_delivery_may_expire_a_fifth_of_a_type_and_no_more() -> None:
    assert shrink_refusal({"A": 10, "B": 5}, {"A": 2, "B": 1}, _sentence) is None
    assert (
        shrink_refusal({"A": 10, "B": 5}, {"A": 3, "B": 2}, _sentence) == "A: 3 of 10"
    )  # the first, by type
    assert shrink_refusal({"A": 0}, {"A": 0}, _sentence) is None
    assert shrink_refusal({"A": 10}, {}, _sentence) is None


def test_dangling_references_beyond_one_percent_refuse() -> None:
    assert dangling_refusal(1, 100, "x") is None
    assert dangling_refusal(2, 100, "nothing served") == (
        "refused: 2 of 100 references point at nothing served, more than the 1% allowed; "
        "the delivery looks cut or broken (use --force to import it anyway)"
    )


def test_a_refusal_keeps_the_report_with_the_failed_release_and_on_the_error() -> None:
    release, result = _Release(), _Result(file="d.csv", rows=3)
    with pytest.raises(DeliveryError) as raised:
        refuse(release, result, "refused: cut short")
    assert str(raised.value) == "refused: cut short"
    assert raised.value.report == {"file": "d.csv", "rows": 3, "refused": "refused: cut short"}
    assert release.failed == [("refused: cut short", raised.value.report)]
    assert release.finished == [] and result.release_id is None and not result.changed_nothing


def test_an_activated_result_has_its_release_and_a_refusal_can_carry_its_own_error() -> None:
    release, result = _Release(), _Result(file="d.csv")
    result.activate(release, "2026-12-06T00:00:00")
    assert (result.release_id, release.finished[0][0], result.staged) == (7, "2026-12-06T00:00:00", False)
    staged = _Result(file="d.csv")
    staged.activate(_Release(stage=True))
    assert (staged.release_id, staged.staged) == (7, True)
    unchanged = _Release(release_id=None)
    same = _Result(file="d.csv")
    same.activate(unchanged)
    assert same.changed_nothing
    own = DeliveryError("refused: 2 problems", line=4)
    with pytest.raises(DeliveryError) as raised:
        refuse(_Release(), _Result(file="d.csv"), "refused: 2 problems", own)
    assert raised.value is own and own.report is not None and own.report["refused"] == "refused: 2 problems"
