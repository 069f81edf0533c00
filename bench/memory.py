"""Memory: what a warm server holds, as a whole and per gunicorn worker, for one or more builds of
`serve` and the model kinds it serves, started in interleaved rounds.

    .venv/bin/python bench/memory.py [--serve LABEL=PATH ...] [--models text,joblib,pipeline] [--repeat K]

Models: ``text``, an ``LGBMClassifier``'s trees saved as LightGBM text (11 features, 100 trees,
31 leaves, as bench/pickles.py trains them); ``joblib``, the same estimator joblib'd;
``pipeline``, bench/pickles.py's ``ColumnTransformer`` + ``LGBMClassifier`` Pipeline. Each
(build, model) server starts fresh every round (builds and models in rotating order), takes
2 s of single-row requests at 8 connections and ten 1,000-row requests, and then, with no
compile job left, its proportional set size (PSS, from /proc/<pid>/smaps_rollup: shared pages
split between the processes sharing them) is read: the whole server (serve, nginx, gunicorn
master and workers) and each worker. Medians over rounds. ``--serve before=/tmp/before/container/program/serve``
compares an earlier build in the same run (default: this checkout's serve alone, as "ours").
The report goes to stdout and bench/results/memory.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container" / "program"))
from lightgbm_container.packages import use_pickle_packages

use_pickle_packages()  # scikit-learn before LightGBM (lightgbm_container/packages.py)

import harness  # noqa: E402
import measure  # noqa: E402
import pickles  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402
import startup  # noqa: E402
from workload import Payload  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "memory.md"
MODELS = ("text", "joblib", "pipeline")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--serve",
        action="append",
        metavar="LABEL=PATH",
        help="a build of serve to measure (repeatable; default: ours=this checkout's)",
    )
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (a fresh start of every server each)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    builds = args.serve or [f"ours={servers.DEFAULT_SERVE}"]
    args.builds = {label: Path(path) for label, path in (entry.split("=", 1) for entry in builds)}
    args.models = [name for name in args.models.split(",") if name]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        parser.error(f"unknown model kinds {sorted(unknown)}; choose from {', '.join(MODELS)}")
    return args


def roots(tmp: Path, built: dict) -> dict[str, tuple[Path, str]]:
    """model kind -> (its ML root, the payload key its requests use)."""
    files = {
        "text": ({"model.txt": built["classifier"].booster_}, "numbers"),
        "joblib": ({"model.joblib": built["classifier"]}, "numbers"),
        "pipeline": ({"model.joblib": built["pipeline"]}, "pipeline"),
    }
    return {kind: (pickles.model_root(tmp, kind, model_files), key) for kind, (model_files, key) in files.items()}


def workers_pss_mb(server_pid: int) -> list[float]:
    """Each gunicorn worker's PSS: the gunicorn processes whose parent is gunicorn too."""
    tree = startup.process_tree(server_pid)
    masters = {pid for pid in tree if b"gunicorn" in startup.cmdline(pid)}
    found = []
    for pid in tree:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if pid in masters and parent in masters:
            found.append(startup.process_pss_mb(pid))
    return found


def _rollup_mb(pid: int) -> dict[str, float]:
    """PSS and private (unshared) memory of one process, from /proc/<pid>/smaps_rollup, in MB."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {"pss": 0.0, "private": 0.0}
    fields = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.split()[1].isdigit()}
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"pss": fields.get("Pss", 0) / 1024, "private": private / 1024}


def roles_mb(server_pid: int) -> dict[str, dict[str, float]]:
    """Where a server's memory is: PSS and private MB summed per role (serve's supervisor, nginx's
    processes, gunicorn's master, its workers), so shared pages and each part's own show."""
    tree = startup.process_tree(server_pid)
    masters = {pid for pid in tree if b"gunicorn" in startup.cmdline(pid)}
    found: dict[str, dict[str, float]] = defaultdict(lambda: {"pss": 0.0, "private": 0.0})
    for pid in tree:
        command = startup.cmdline(pid)
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) if pid != server_pid else 0
        if pid == server_pid:
            role = "serve (supervisor)"
        elif command.startswith(b"nginx"):
            role = "nginx (master + workers)"
        elif pid in masters and parent in masters:
            role = "gunicorn workers"
        elif pid in masters:
            role = "gunicorn master"
        else:
            role = "other"
        for key, value in _rollup_mb(pid).items():
            found[role][key] += value
    return dict(found)


def one_start(
    args: argparse.Namespace, tmp: Path, serve: Path, root: Path, payload: Payload, script: Path, label: str
) -> dict:
    run_dir = tmp / "runs" / label.replace(" ", "-")
    run_dir.mkdir(parents=True, exist_ok=True)
    server = servers.start_ours(serve, root, run_dir, args.workers, 300, {}, name=label)
    try:
        measure.run_wrk(server.invocations_url, script, connections=8, threads=2, duration_s=2)
        measure.median_latency_s(server.invocations_url, payload, 10)
        pid = server.processes[0].popen.pid
        whole = startup.pss_mb(pid)  # waits until no compile job runs
        workers = workers_pss_mb(pid)
        roles = roles_mb(pid)
    finally:
        for process in reversed(server.processes):
            process.stop()
    figures = {"whole": whole, "worker": statistics.mean(workers) if workers else float("nan"), "workers": len(workers)}
    for role, values in roles.items():
        figures[f"{role} PSS"] = values["pss"]
        figures[f"{role} private"] = values["private"]
    return figures


def measured_report(args: argparse.Namespace, tmp: Path) -> str:
    """Everything this benchmark measures, in ``tmp``, as its report."""
    built = pickles.build(tmp)
    model_roots = roots(tmp, built)
    scripts = {
        key: measure.write_wrk_script(built["payloads"][key][1], tmp, name=f"{key}.lua") for key in built["payloads"]
    }
    cases = [(label, kind) for kind in args.models for label in args.builds]
    samples: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for round_index in range(args.repeat):
        shift = round_index % len(cases)
        for label, kind in cases[shift:] + cases[:shift]:
            root, key = model_roots[kind]
            figures = one_start(
                args,
                tmp,
                args.builds[label],
                root,
                built["payloads"][key][1_000],
                scripts[key],
                f"{label} {kind}",
            )
            print(
                f"[bench] round {round_index + 1}: {label} {kind}: whole {figures['whole']:.1f} MB, "
                f"per worker {figures['worker']:.1f} MB ({figures['workers']} workers)",
                flush=True,
            )
            for metric, value in figures.items():
                if metric != "workers":
                    samples[(label, kind)][metric].append(value)
    lines = [
        "# Memory: PSS of a warm server, whole and per worker",
        "",
        f"- machine: {report.machine_summary()}",
        f"- method: {args.repeat} fresh start(s) per server, medians; {args.workers} workers; warmed by 2 s of "
        "single-row requests at 8 connections and ten 1,000-row requests",
        "",
        "| build | model | whole server PSS (MB) | per worker PSS (MB) |",
        "|---|---|---:|---:|",
    ]
    for label, kind in cases:
        values = samples[(label, kind)]
        lines.append(
            f"| {label} | {kind} | {statistics.median(values['whole']):.1f} | "
            f"{statistics.median(values['worker']):.1f} |"
        )
    lines += [
        "",
        "Where it is (medians; PSS splits shared pages between the processes sharing them, private is "
        "what no other process shares):",
        "",
        "| build | model | part | PSS (MB) | private (MB) |",
        "|---|---|---|---:|---:|",
    ]
    for label, kind in cases:
        values = samples[(label, kind)]
        for metric in sorted(values):
            if metric.endswith(" PSS"):
                role = metric.removesuffix(" PSS")
                lines.append(
                    f"| {label} | {kind} | {role} | {statistics.median(values[metric]):.1f} | "
                    f"{statistics.median(values[role + ' private']):.1f} |"
                )
    text = "\n".join(lines) + "\n"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run("lgbm-bench-memory-", args.output, lambda tmp: measured_report(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
