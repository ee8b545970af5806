"""The errors a user sees: each one sentence with its place, never a traceback."""

from __future__ import annotations

from typing import Any


class GrunndataError(Exception):
    """An error we expected and can explain in one sentence; the CLI prints it and exits 2."""


class DeliveryError(GrunndataError):
    """A FEST delivery that cannot be imported: not FEST, malformed, or refused by a guard."""

    def __init__(
        self,
        message: str,
        *,
        catalogue: str | None = None,
        entry_id: str | None = None,
        line: int | None = None,
    ) -> None:
        self.catalogue, self.entry_id, self.line = catalogue, entry_id, line
        self.report: dict[str, Any] | None = None  # the refused release's report, when there is one
        where = []
        if catalogue:
            where.append(catalogue)
        if entry_id:
            where.append(f"Id {entry_id}")
        if line:
            where.append(f"line {line}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class StoreError(GrunndataError):
    """The store cannot do what was asked: unreachable database, unknown release, busy."""


class StoreBusy(StoreError):
    """Another process writes to the store (an import or a reindex): try again when it has finished."""


class ExportError(GrunndataError):
    """An export that cannot be made as asked (an unknown HentetDato, an unwritable file)."""


class ExportFailed(GrunndataError):
    """An export that stopped before it finished (its process died): a fault of the moment, not
    of the request; asking again may succeed."""


class UnknownRelease(StoreError):
    """A release number the store does not hold (or, to a client, one of a line it may not see)."""


class ReleaseConflict(StoreError):
    """A release that cannot take the asked step in its state: activating one that is not staged,
    or one staged against a release that is no longer the active one."""


class UnknownType(ReleaseConflict):
    """A diff asked for a type neither of its two releases holds: a typo, most likely."""

    def __init__(self, message: str, rtype: str, held: list[str]) -> None:
        super().__init__(message)
        self.rtype, self.held = rtype, held  # the type asked for; the types the releases do hold
