"""A closed-loop HTTP/1.1 load generator cheap enough not to be what is measured on 2 cores.

    python benchmarks/loadgen.py http://127.0.0.1:8000 /fhir/metadata [PATH ...] [-c 16] [-d 10] [-w 2]
    python benchmarks/loadgen.py http://127.0.0.1:8000 --paths-file paths.txt -c 64
    python benchmarks/loadgen.py --ceiling          # its own limit, against a raw constant server

Each of `concurrency` keep-alive connections has one GET in flight at a time and sends the next
as soon as the answer is in (no pipelining). It is callbacks on an asyncio Protocol (uvloop when
installed), not coroutines: a response costs a header scan and a few integer operations. Only the
status line, the headers and the body's length (Content-Length or chunked) are parsed.

The measured window opens after the warm-up and closes after `duration` seconds, or later, once
`min_samples` requests sent in it have been answered (at most `max_duration` seconds): a slow
scenario still gets a sample worth a percentile. The rate counts the answers that arrive in the
window; the latencies (send to last body byte, perf_counter_ns) are those of the requests sent in
it, waited for after it closes. Anything but 2xx, a connection the server drops and a request
still unanswered 120 s after the window closed count as errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

_HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Result:
    """What one measurement saw; latencies in milliseconds."""

    concurrency: int
    seconds: float  # the measured window; longer than asked when the answers were slow
    requests: int  # sent in the window (the latency sample), errors included
    errors: int  # non-2xx answers, dropped connections and unanswered requests
    statuses: dict[int, int]
    rps: float
    p50: float
    p90: float
    p99: float
    max: float
    mean_bytes: float  # body bytes per answer
    cpu: float  # the load generator's own CPU time / wall time (1.0 = one core busy)

    def line(self) -> str:
        errors = f", {self.errors} errors {dict(sorted(self.statuses.items()))}" if self.errors else ""
        if self.requests < 100:
            errors += f", only {self.requests} requests in {self.seconds:.0f} s"
        return (
            f"c={self.concurrency:<3} {self.rps:>9,.0f} req/s  p50 {self.p50:6.2f} ms  p90 {self.p90:6.2f} ms  "
            f"p99 {self.p99:6.2f} ms  max {self.max:7.2f} ms  {self.mean_bytes:>8,.0f} B/answer  "
            f"loadgen cpu {self.cpu:.0%}{errors}"
        )


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of sorted nanoseconds, in milliseconds (0 when there are none)."""
    if not sorted_ns:
        return 0.0
    rank = max(1, min(len(sorted_ns), int(q / 100 * len(sorted_ns) + 0.999999)))
    return sorted_ns[rank - 1] / 1e6


@dataclass
class _Run:
    """State shared by the connections of one measurement."""

    requests: list[bytes]
    measure_from: int  # perf_counter_ns: the measured window opens ...
    measure_until: int  # ... and may close, with min_samples answered ...
    measure_limit: int  # ... and closes anyway
    min_samples: int
    done: asyncio.Future[None]
    closed_at: int = 0  # when the window closed (0: open); no request is sent after it
    completed: int = 0  # answers that arrived in the window: the rate
    latencies: array[int] = field(default_factory=lambda: array("q"))
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    body_bytes: int = 0
    open_connections: int = 0
    connections: set[_Connection] = field(default_factory=set)
    shared: bool = False  # one order for all connections: each request sent once (then again)
    cursor: int = 0

    def closed(self, now: int) -> bool:
        if self.closed_at:
            return now >= self.closed_at
        if now >= self.measure_limit or (
            now >= self.measure_until and len(self.latencies) >= self.min_samples
        ):
            self.closed_at = now
            return True
        return False


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send, read one answer, record it, send the next."""

    def __init__(self, run: _Run, start: int, reconnect: asyncio.Queue[int]) -> None:
        self.run = run
        self.next_index = start
        self.reconnect = reconnect
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0
        self.status = 0
        self.body_left = -1  # -1: still in the head; -2: chunked body
        self.body_size = 0
        self.close_after = False
        self.in_flight = False
        self.counted = False  # sent in the measured window

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.run.open_connections += 1
        self.run.connections.add(self)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if self.run.closed(time.perf_counter_ns()):
            self.transport.close()
            return
        requests = self.run.requests
        if self.run.shared:
            request = requests[self.run.cursor % len(requests)]
            self.run.cursor += 1
        else:
            request = requests[self.next_index]
            self.next_index = (self.next_index + 1) % len(requests)
        self.buffer.clear()
        self.body_left = -1
        self.body_size = 0
        self.close_after = False
        self.in_flight = True
        self.sent_at = time.perf_counter_ns()
        self.counted = self.sent_at >= self.run.measure_from
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.body_left == -1 and not self._parse_head():
            return
        if self.body_left == -2:
            if not self._parse_chunks():
                return
        elif len(self.buffer) < self.body_left:
            return
        self._finish()

    def _parse_head(self) -> bool:
        end = self.buffer.find(_HEAD_END)
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).lower()
        del self.buffer[: end + 4]
        self.status = int(head[9:12])
        self.body_left = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                self.body_left = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                self.body_left = -2
            elif name == b"connection" and b"close" in value:
                self.close_after = True
        if self.status in (204, 304) or 100 <= self.status < 200:
            self.body_left = 0
        self.body_size = max(self.body_left, 0)
        return True

    def _parse_chunks(self) -> bool:
        """Whether the whole chunked body is in the buffer (size lines, data, last chunk, trailers)."""
        pos, size = 0, 0
        while True:
            line_end = self.buffer.find(b"\r\n", pos)
            if line_end < 0:
                return False
            chunk = int(bytes(self.buffer[pos:line_end]).split(b";", 1)[0], 16)
            pos = line_end + 2
            if chunk == 0:
                if self.buffer.find(b"\r\n", pos) == pos:  # no trailers
                    break
                trailers_end = self.buffer.find(_HEAD_END, pos - 2)
                if trailers_end < 0:
                    return False
                break
            if len(self.buffer) < pos + chunk + 2:
                return False
            pos += chunk + 2
            size += chunk
        self.body_size = size
        return True

    def _finish(self) -> None:
        now = time.perf_counter_ns()
        run = self.run
        self.in_flight = False
        if now >= run.measure_from and not run.closed(now):
            run.completed += 1
        if self.counted:
            run.latencies.append(now - self.sent_at)
            run.statuses[self.status] += 1
            run.body_bytes += self.body_size
        if self.close_after:
            assert self.transport is not None
            self.transport.close()  # connection_lost opens the next one
            return
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        run = self.run
        run.open_connections -= 1
        run.connections.discard(self)
        now = time.perf_counter_ns()
        if self.in_flight and self.counted:
            run.dropped += 1
            self.in_flight = False
        if not run.closed(now):
            self.reconnect.put_nowait(self.next_index)  # the server hung up: carry on on a new one
        elif run.open_connections == 0 and not run.done.done():
            run.done.set_result(None)


def _request_bytes(host: str, paths: Sequence[str], headers: Sequence[str] = ()) -> list[bytes]:
    extra = "".join(f"{h}\r\n" for h in headers)  # e.g. "Authorization: Bearer ..."
    return [
        f"GET {p} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: grunndata-loadgen\r\n"
        f"Accept: application/fhir+json\r\n{extra}\r\n".encode()
        for p in paths
    ]


async def measure_async(
    url: str,
    paths: Sequence[str],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    seed: int = 0,
    min_samples: int = 100,
    max_duration: float | None = None,
    headers: Sequence[str] = (),
    requests: Sequence[bytes] = (),
) -> Result:
    """Measure one concurrency level: `paths` are sent round-robin from a seeded shuffle; or, given
    `requests` (whole requests, e.g. each with its own DPoP proof), those are sent in their order,
    each once, by whichever connection is free (after the last, the first again).

    The window lasts `duration` seconds, or longer until `min_samples` requests sent in it are
    answered, but no longer than `max_duration` (default five times `duration`).
    """
    if not paths and not requests:
        raise ValueError("no paths to request")
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    order = list(paths)
    random.Random(seed).shuffle(order)
    loop = asyncio.get_running_loop()
    started = time.perf_counter_ns()
    run = _Run(
        requests=list(requests) or _request_bytes(f"{host}:{port}", order, headers),
        measure_from=started + int(warmup * 1e9),
        measure_until=started + int((warmup + duration) * 1e9),
        measure_limit=started + int((warmup + max(duration, max_duration or 5 * duration)) * 1e9),
        min_samples=min_samples,
        done=loop.create_future(),
        shared=bool(requests),
    )
    reconnect: asyncio.Queue[int] = asyncio.Queue()

    async def open_one(start: int) -> None:
        await loop.create_connection(lambda: _Connection(run, start, reconnect), host, port)

    await asyncio.gather(*(open_one(i * len(order) // concurrency) for i in range(concurrency)))

    async def reopen() -> None:
        while True:
            start = await reconnect.get()
            if run.closed(time.perf_counter_ns()):
                if run.open_connections == 0 and not run.done.done():
                    run.done.set_result(None)
                continue
            try:
                await open_one(start)
            except OSError:  # the server is gone: count it, and keep trying until the time is up
                run.dropped += 1
                await asyncio.sleep(0.01)
                reconnect.put_nowait(start)

    reopener = asyncio.ensure_future(reopen())
    await asyncio.sleep(warmup)
    cpu_measured, wall_measured = time.process_time(), time.perf_counter()
    unanswered = 0
    try:
        await asyncio.wait_for(run.done, timeout=(run.measure_limit - run.measure_from) / 1e9 + 120)
    except TimeoutError:  # requests the server never answered: errors, and their connections go
        for connection in list(run.connections):
            unanswered += connection.in_flight and connection.counted
            connection.in_flight = False
            if connection.transport is not None:
                connection.transport.abort()
    finally:
        cpu_used = time.process_time() - cpu_measured
        wall_used = time.perf_counter() - wall_measured
        reopener.cancel()
    window = ((run.closed_at or run.measure_limit) - run.measure_from) / 1e9
    latencies = sorted(run.latencies)
    statuses = dict(run.statuses)
    bad = sum(n for status, n in statuses.items() if not 200 <= status < 300) + run.dropped + unanswered
    if run.dropped:
        statuses[0] = run.dropped  # 0: the connection was dropped
    if unanswered:
        statuses[-1] = unanswered  # -1: no answer in time
    n = len(latencies)
    return Result(
        concurrency=concurrency,
        seconds=window,
        requests=n + run.dropped + unanswered,
        errors=bad,
        statuses=statuses,
        rps=run.completed / window,
        p50=percentile(latencies, 50),
        p90=percentile(latencies, 90),
        p99=percentile(latencies, 99),
        max=latencies[-1] / 1e6 if latencies else 0.0,
        mean_bytes=run.body_bytes / n if n else 0.0,
        cpu=cpu_used / wall_used,
    )


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (as the servers use), else asyncio's."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def measure(
    url: str,
    paths: Sequence[str],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    seed: int = 0,
    min_samples: int = 100,
    max_duration: float | None = None,
    headers: Sequence[str] = (),
    requests: Sequence[bytes] = (),
) -> Result:
    """`measure_async` on a fresh event loop, for callers that are not async."""
    loop = new_loop()
    try:
        return loop.run_until_complete(
            measure_async(
                url,
                paths,
                concurrency=concurrency,
                duration=duration,
                warmup=warmup,
                seed=seed,
                min_samples=min_samples,
                max_duration=max_duration,
                headers=headers,
                requests=requests,
            )
        )
    finally:
        loop.close()


# -- the load generator's own ceiling ----------------------------------------------------------

_CONSTANT = b"HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: 2\r\n\r\n{}"


class _ConstantServer(asyncio.Protocol):
    """Answers every request head with the same tiny response: no HTTP parsing, no framework."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        data = self.pending + data
        heads = data.count(_HEAD_END)
        self.pending = data[data.rfind(_HEAD_END) + 4 :] if heads else data
        if heads:
            self.transport.write(_CONSTANT * heads)


def serve_constant(port: int) -> None:
    """Run the raw constant server until killed (a separate process, so it has its own core)."""
    loop = new_loop()
    server = loop.run_until_complete(loop.create_server(_ConstantServer, "127.0.0.1", port, backlog=1024))
    try:
        loop.run_forever()
    finally:
        server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:port; SystemExit if `proc` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {proc.returncode} before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout:.0f} s")


def ceiling(concurrencies: Sequence[int], duration: float, warmup: float) -> list[Result]:
    """Requests/s against the raw constant server: a floor for the load generator's own limit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-constant", str(port)])
    try:
        wait_for_port(port, proc=proc)
        return [
            measure(f"http://127.0.0.1:{port}", ["/"], concurrency=c, duration=duration, warmup=warmup)
            for c in concurrencies
        ]
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", nargs="?", help="http://host:port")
    ap.add_argument("paths", nargs="*", help="paths to GET, e.g. /fhir/metadata")
    ap.add_argument("--paths-file", help="one path per line")
    ap.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds per level")
    ap.add_argument("-w", "--warmup", type=float, default=2.0, help="unmeasured seconds before")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ceiling", action="store_true", help="measure against a raw constant server")
    ap.add_argument("--serve-constant", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_constant:
        serve_constant(args.serve_constant)
        return
    if args.ceiling:
        print(f"load generator ceiling (raw uvloop constant server, {os.cpu_count()} cores):")
        for r in ceiling(args.concurrency, args.duration, args.warmup):
            print(r.line())
        return
    if not args.url:
        ap.error("give a URL, or --ceiling")
    paths = list(args.paths)
    if args.paths_file:
        with open(args.paths_file) as f:
            paths += [line.strip() for line in f if line.strip()]
    if not paths:
        paths = ["/"]
    for c in args.concurrency:
        r = measure(
            args.url, paths, concurrency=c, duration=args.duration, warmup=args.warmup, seed=args.seed
        )
        print(r.line(), flush=True)


if __name__ == "__main__":
    main()
