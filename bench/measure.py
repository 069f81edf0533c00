"""The measurements: wrk for the single-row request, Python requests for large bodies.

wrk measures the single-row case because a Python client would cost more per request
than the servers under test; the large bodies take milliseconds to seconds, where a
plain `requests.Session` is precise enough and lets every answer be checked.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from workload import Payload

CSV_HEADERS = {"Content-Type": "text/csv"}
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


class BenchmarkError(RuntimeError):
    """A server answered wrongly (status, line count, values): the figures would be meaningless."""


@dataclass(frozen=True)
class WrkResult:
    """What the benchmark keeps from one wrk run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int


def write_wrk_script(
    payload: Payload, directory: Path, headers: Mapping[str, str] | None = None, name: str | None = None
) -> Path:
    """A Lua script that POSTs the payload's file as text/csv (wrk's default is GET, no body).

    `headers` are added to every request (e.g. X-Amzn-SageMaker-Target-Model); `name` is the
    script's file name, by default `post_rows_<rows>.lua`.
    """
    script = directory / (name or f"post_rows_{payload.rows}.lua")
    extra = "".join(f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}\n" for key, value in (headers or {}).items())
    script.write_text(
        "-- POST the body as SageMaker's CSVSerializer sends it.\n"
        f'local file = assert(io.open({json.dumps(str(payload.path))}, "rb"))\n'
        'wrk.method = "POST"\n'
        'wrk.body = file:read("*a")\n'
        "file:close()\n"
        'wrk.headers["Content-Type"] = "text/csv"\n' + extra
    )
    return script


def _seconds(value: str, unit: str) -> float:
    return float(value) * _UNIT_SECONDS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Read wrk's text report; refuse runs with errors or non-2xx answers."""
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors and any(int(n) for n in errors.groups()):
        raise BenchmarkError(f"wrk saw socket errors:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise BenchmarkError(f"{non_2xx.group(1)} answers were not 2xx:\n{output}")
    percentiles = {int(p): _seconds(v, u) for p, v, u in re.findall(rf"^\s+(\d+)%\s+{_TIME}\s*$", output, re.M)}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    count = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rps is None or count is None or 50 not in percentiles or 99 not in percentiles:
        raise BenchmarkError(f"could not read wrk's report (was --latency given?):\n{output}")
    if int(count.group(1)) == 0:
        raise BenchmarkError(f"wrk completed no request:\n{output}")
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=percentiles[50] * 1e3,
        p99_ms=percentiles[99] * 1e3,
        requests=int(count.group(1)),
    )


def run_wrk(url: str, script: Path, connections: int, threads: int, duration_s: float) -> WrkResult:
    """One bounded wrk run; its own time limit guards against a server that hangs."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if done.returncode != 0:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    return parse_wrk(done.stdout)


def response_lines(text: str) -> list[str]:
    """One line per prediction; a trailing newline (pandas writes one) is not a line."""
    return text.splitlines()


def answer_lines(response: requests.Response) -> int:
    return len(response_lines(response.text))


def post_checked(
    session: requests.Session,
    url: str,
    payload: Payload,
    headers: Mapping[str, str] | None = None,
    answers: Callable[[requests.Response], int] = answer_lines,
) -> requests.Response:
    """POST and insist on 2xx and exactly one answer per input row (Batch Transform's rule).

    `headers` are sent besides the CSV Content-Type (e.g. X-Amzn-SageMaker-Target-Model);
    `answers` counts the answers in a response (by default its lines).
    """
    response = session.post(url, data=payload.body, headers={**CSV_HEADERS, **(headers or {})}, timeout=120)
    if not 200 <= response.status_code < 300:
        raise BenchmarkError(f"POST {url} ({payload.rows} rows): HTTP {response.status_code}: {response.text[:500]}")
    counted = answers(response)
    if counted != payload.rows:
        raise BenchmarkError(f"POST {url}: {payload.rows} rows in, {counted} answers out")
    return response


def median_call_seconds(call: Callable[[], object], count: int, warm_up: int = 1) -> float:
    """Median wall time of ``count`` sequential calls, after ``warm_up`` unmeasured ones."""
    for _ in range(warm_up):
        call()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def median_latency_s(
    url: str,
    payload: Payload,
    count: int,
    headers: Mapping[str, str] | None = None,
    answers: Callable[[requests.Response], int] = answer_lines,
) -> float:
    """Median wall time of `count` sequential checked requests, after one warm-up request."""
    with requests.Session() as session:
        return median_call_seconds(lambda: post_checked(session, url, payload, headers, answers), count)


def prediction_error(
    url: str, payload: Payload, expected: np.ndarray, headers: Mapping[str, str] | None = None
) -> float:
    """Largest absolute difference between the server's answer and `expected`."""
    with requests.Session() as session:
        response = post_checked(session, url, payload, headers)
    try:
        got = np.array([float(line) for line in response_lines(response.text)])
    except ValueError as error:
        raise BenchmarkError(f"POST {url}: answer is not one number per line ({error})") from None
    return float(np.max(np.abs(got - expected)))
