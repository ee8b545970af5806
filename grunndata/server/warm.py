"""Made ready when a release is activated, not when the first client asks.

The first `$translate` after a new release used to build the terminology indexes (~3 s at full
size) and the first `/fest/m30` the export (~10 s), while that client and everyone behind it
waited. Now a new snapshot's terminology indexes are built before it is served (Served.preparers),
and this task makes the rest as soon as a snapshot is served: the indexes of the first one after
start (terminology, search), and each snapshot's full M30 file, in a child process at low
priority. A failure is logged and tried again; nothing a client asks waits for this.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.concurrency import run_in_threadpool

from grunndata.server.auth import ANONYMOUS
from grunndata.server.fastsearch import SearchIndexes
from grunndata.server.m30 import M30Files
from grunndata.server.state import Served
from grunndata.server.terminology import Terminology

log = logging.getLogger("grunndata.server")  # GRUNNDATA_WARM=0 turns this off (Settings.warm)


async def keep_warm(
    served: Served, terms: Terminology, files: M30Files, indexes: SearchIndexes | None = None
) -> None:
    """Forever: at every new snapshot, build what its first clients would otherwise wait for."""
    done = ""
    while True:
        try:
            public = await run_in_threadpool(served.snapshot, ANONYMOUS)
            token = public.token
            if token != done:
                started = time.monotonic()
                await terms.ready()
                if indexes is not None:  # the search index (server/fastsearch.py), if not built yet
                    await asyncio.wrap_future(indexes.future(public))
                await files.file(files.key(None), None)
                done = token
                log.info(
                    "snapshot %s ready in %.1f s (terminology, search index, M30)",
                    token,
                    time.monotonic() - started,
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # the store gone for a moment, a full disk: try again later
            log.exception("could not prepare snapshot for serving; trying again")
            await asyncio.sleep(30)
        await asyncio.sleep(served.snapshot_seconds)
