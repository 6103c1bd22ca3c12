"""A load test: concurrent writers and readers against a running server on 127.0.0.1.

`run_load` releases every writer and reader thread together, each sending its requests
with a plain HTTP client; then it reads back every acknowledged write. Used by `maillage
bench load` (a server process of its own, the real model) and by the test suite (a server
in a thread, a fake encoder). Loopback only, bounded: `writers × rounds` writes and
`readers × rounds` reads, no loop without an end.

Writes mix the three kinds that race in real use: new organisations (sent with an
`Idempotency-Key`, and every fifth one sent again with the same key, as a client whose
answer was lost would), new statements on a handful of shared organisations (their row
is written by many at once), and dismissals, each sent by two writers at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

ORGANISATIONS = "/api/v1/organisations"
SEARCH = "/api/v1/search/organisations"
WRITE_KINDS = ("organisation", "statement", "dismissal")
READ_KINDS = ("search", "partners", "list")
RETRY = "retry"  # an organisation's POST sent again with its Idempotency-Key
QUERIES = [
    "accompagnement social des locataires en difficulté",
    "jardins partagés en pied d'immeuble",
    "médiation de voisinage",
    "lutte contre la précarité énergétique",
    "insertion professionnelle par les chantiers",
    "maintien à domicile des personnes âgées",
]


@dataclass(frozen=True)
class Call:
    """One request: its kind, status (None: no answer within the client's timeout, or the
    connection failed), duration in seconds, and for a write what reads it back."""

    kind: str
    status: int | None
    seconds: float
    check: str | None = None  # path whose GET must answer 200 (a created row)
    dismissal: tuple[int, int] | None = None  # (organisation, dismissed) to find listed
    key: str | None = None  # the Idempotency-Key sent
    location: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class KindFigures:
    kind: str
    requests: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    statuses: dict[str, int]


@dataclass
class LoadReport:
    backend: str
    writers: int
    readers: int
    rounds: int
    seconds: float
    kinds: list[KindFigures]
    statuses: dict[str, int]
    server_errors: int  # 5xx other than 503
    unavailable: int  # 503 (overload, answered with Retry-After)
    no_answer: int  # client timeout or connection failure: a stall
    lost_writes: list[str] = field(default_factory=list)  # acknowledged, not read back
    duplicates: list[str] = field(default_factory=list)  # a retried POST that created again
    errors: list[str] = field(default_factory=list)  # a few examples, for the reader

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values), q)) * 1000, 1) if values else float("nan")


def figures(calls: list[Call], kind: str) -> KindFigures:
    mine = [c for c in calls if c.kind == kind]
    seconds = [c.seconds for c in mine]
    return KindFigures(
        kind=kind,
        requests=len(mine),
        p50_ms=_percentile(seconds, 50),
        p95_ms=_percentile(seconds, 95),
        max_ms=round(max(seconds) * 1000, 1) if seconds else float("nan"),
        statuses=dict(sorted(Counter(str(c.status) for c in mine).items())),
    )


def organisation_body(run: str, writer: int, round_: int) -> dict[str, Any]:
    """A new organisation of its own name and texts, on a Marseille commune."""
    tag = f"{run} n° {writer}-{round_}"
    return {
        "name": f"Association de charge {tag}",
        "kind": "association",
        "territories": ["commune:13001"],
        "statements": [
            {
                "kind": "competency",
                "text": f"Animation d'ateliers de réparation avec les habitants ({tag})",
            },
            {"kind": "need", "text": f"Un local associatif en pied d'immeuble ({tag})"},
        ],
    }


class _Client:
    """One thread's HTTP client: every request timed, a failure to answer recorded."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        import httpx

        self._httpx = httpx
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def send(self, kind: str, method: str, path: str, **kwargs: Any) -> tuple[Call, Any]:
        start = time.perf_counter()
        try:
            response = self.client.request(method, path, **kwargs)
        except self._httpx.HTTPError as exc:
            return Call(kind, None, time.perf_counter() - start, error=repr(exc)), None
        seconds = time.perf_counter() - start
        error = response.text[:300] if response.status_code >= 500 else None
        return Call(
            kind,
            response.status_code,
            seconds,
            location=response.headers.get("location"),
            error=error,
        ), response

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class Seeds:
    """Organisations the load reads and writes to: statements go to `shared`, dismissals
    pair them, partners are asked of them."""

    shared: list[int]


def find_seeds(base_url: str, headers: dict[str, str], timeout: float) -> Seeds:
    """The organisations already there (at least two are needed)."""
    client = _Client(base_url, headers, timeout)
    try:
        _call, response = client.send("setup", "GET", ORGANISATIONS, params={"limit": 200})
        if response is None or response.status_code != 200:
            raise RuntimeError(f"listing the organisations failed: {_call}")
        ids = [item["id"] for item in response.json()["items"]]
    finally:
        client.close()
    if len(ids) < 2:
        raise RuntimeError("the load needs at least two organisations in the database")
    return Seeds(shared=ids[:10])


def _write(client: _Client, seeds: Seeds, run: str, writer: int, round_: int) -> list[Call]:
    # Writers 2k and 2k+1 write the same kind in each round (dismissals race in pairs).
    pair = writer // 2
    kind = WRITE_KINDS[(pair + round_) % len(WRITE_KINDS)]
    shared = seeds.shared
    if kind == "organisation":
        key = f"{run}-{writer}-{round_}"
        body = organisation_body(run, writer, round_)
        headers = {"Idempotency-Key": key}
        call, _ = client.send(kind, "POST", ORGANISATIONS, json=body, headers=headers)
        calls = [_with(call, check=call.location, key=key)]
        if writer % 5 == 0:  # the client did not hear the answer, and sends it again
            again, _ = client.send(RETRY, "POST", ORGANISATIONS, json=body, headers=headers)
            calls.append(_with(again, key=key))
        return calls
    if kind == "statement":
        owner = shared[writer % len(shared)]
        body = {"kind": "competency", "text": f"Savoir-faire de charge {run} n° {writer}-{round_}"}
        call, _ = client.send(kind, "POST", f"{ORGANISATIONS}/{owner}/statements", json=body)
        return [_with(call, check=call.location)]
    # Writers 2k and 2k+1 dismiss the same organisation at once: one creates the
    # dismissal, the other finds it (201 and 200); each pair and round its own.
    owner = shared[(pair + round_) % len(shared)]
    others = [o for o in shared if o != owner]
    dismissed = others[(pair * 7 + round_ * 3) % len(others)]
    call, _ = client.send(
        kind,
        "POST",
        f"{ORGANISATIONS}/{owner}/dismissals",
        json={"organisation_id": dismissed, "reason": f"charge {run}"},
    )
    return [_with(call, dismissal=(owner, dismissed))]


def _with(call: Call, **changes: Any) -> Call:
    return Call(**{**asdict(call), **changes})


def _read(client: _Client, seeds: Seeds, reader: int, round_: int) -> list[Call]:
    kind = READ_KINDS[(reader + round_) % len(READ_KINDS)]
    if kind == "search":
        params: dict[str, Any] = {"q": QUERIES[(reader + round_) % len(QUERIES)], "limit": 10}
        call, _ = client.send(kind, "GET", SEARCH, params=params)
    elif kind == "partners":
        owner = seeds.shared[reader % len(seeds.shared)]
        call, _ = client.send(kind, "GET", f"{ORGANISATIONS}/{owner}/partners")
    else:
        call, _ = client.send(kind, "GET", ORGANISATIONS, params={"q": "association", "limit": 20})
    return [call]


def _together(work: Callable[[int], list[Call]], n: int, barrier: threading.Barrier) -> Any:
    """Threads running work(0..n-1) once the barrier lets them; their calls collected."""
    out: list[list[Call]] = [[] for _ in range(n)]

    def run(i: int) -> None:
        barrier.wait(120)
        out[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,), name=f"charge-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    return threads, out


def run_load(
    base_url: str,
    headers: dict[str, str],
    *,
    backend: str,
    writers: int = 50,
    readers: int = 50,
    rounds: int = 1,
    timeout: float = 60.0,
) -> LoadReport:
    """Send `writers` writing and `readers` reading threads at the server at once, each
    sending `rounds` requests (plus its retries) one after the other; then read back every
    acknowledged write. `timeout` (seconds) is the client's: a request not answered within
    it counts as a stall, not as a slow answer. The server must already hold two
    organisations or more. Raises RuntimeError if the setup requests fail."""
    seeds = find_seeds(base_url, headers, timeout)
    run = uuid.uuid4().hex[:8]
    barrier = threading.Barrier(writers + readers + 1)

    def writer(i: int) -> list[Call]:
        client = _Client(base_url, headers, timeout)
        try:
            return [c for r in range(rounds) for c in _write(client, seeds, run, i, r)]
        finally:
            client.close()

    def reader(i: int) -> list[Call]:
        client = _Client(base_url, headers, timeout)
        try:
            return [c for r in range(rounds) for c in _read(client, seeds, i, r)]
        finally:
            client.close()

    write_threads, written = _together(writer, writers, barrier)
    read_threads, read = _together(reader, readers, barrier)
    barrier.wait(120)
    start = time.perf_counter()
    # Bounded: each thread sends at most 2 × rounds requests of at most `timeout` each.
    for thread in [*write_threads, *read_threads]:
        thread.join(timeout * 2 * rounds + 60)
    elapsed = time.perf_counter() - start
    calls = [c for group in [*written, *read] for c in group]
    report = LoadReport(
        backend=backend,
        writers=writers,
        readers=readers,
        rounds=rounds,
        seconds=round(elapsed, 2),
        kinds=[figures(calls, k) for k in (*WRITE_KINDS, RETRY, *READ_KINDS)],
        statuses=dict(sorted(Counter(str(c.status) for c in calls).items())),
        server_errors=sum(1 for c in calls if c.status is not None and c.status >= 500)
        - sum(1 for c in calls if c.status == 503),
        unavailable=sum(1 for c in calls if c.status == 503),
        no_answer=sum(1 for c in calls if c.status is None),
        errors=[f"{c.kind} {c.status} : {c.error}" for c in calls if c.error][:5],
    )
    if any(thread.is_alive() for thread in [*write_threads, *read_threads]):
        report.errors.append("des clients n'ont pas fini dans le temps imparti")
    _check_writes(base_url, headers, timeout, calls, report)
    return report


def _check_writes(
    base_url: str, headers: dict[str, str], timeout: float, calls: list[Call], report: LoadReport
) -> None:
    """Every acknowledged write read back; every retried POST answered as the first."""
    client = _Client(base_url, headers, timeout)
    try:
        for call in calls:
            if call.status == 201 and call.check:
                _got, response = client.send("check", "GET", call.check)
                if response is None or response.status_code != 200:
                    report.lost_writes.append(call.check)
            elif call.status == 201 and call.kind != RETRY and call.check is None:
                if call.dismissal is None:
                    report.lost_writes.append(f"{call.kind} sans adresse (Location)")
        dismissed: dict[int, set[int]] = {}
        for call in calls:
            if call.dismissal is not None and call.status in (200, 201):
                owner, other = call.dismissal
                if owner not in dismissed:
                    _got, response = client.send(
                        "check", "GET", f"{ORGANISATIONS}/{owner}/dismissals"
                    )
                    listed = response.json() if response is not None else []
                    dismissed[owner] = {d["organisation"]["id"] for d in listed}
                if other not in dismissed[owner]:
                    report.lost_writes.append(f"{ORGANISATIONS}/{owner}/dismissals → {other}")
        first = {c.key: c for c in calls if c.kind == "organisation" and c.key}
        for call in calls:
            if call.kind != RETRY or call.key not in first:
                continue
            original = first[call.key]
            if original.status == 201 and (
                call.status != 201 or call.location != original.location
            ):
                report.duplicates.append(
                    f"{call.key} : {original.location} puis {call.status} {call.location}"
                )
    finally:
        client.close()


@contextmanager
def serve_in_thread(app: Any, *, start_timeout: float = 120) -> Iterator[str]:
    """The app behind uvicorn on 127.0.0.1 (a free port), in a thread of this process;
    yields its base URL and stops it on the way out."""
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            raise RuntimeError("the server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
