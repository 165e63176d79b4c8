"""serverless-cases benchmarks (`make bench`): every comparison measured side by side in one
run, on the sandbox target, on this machine. Prints a Markdown report (and writes it to
benchmarks/latest.md).

1. Control-plane overhead: POST /v1/stacks -> run succeeded, over `pulumi up --yes` of the
   same case through the CLI (smallest and largest case). Target <= 1.10.
2. Parallel runs: four stacks created at once; makespan over one stack's time. Target <= 2.2.
3. Responsiveness: p50/p99 of GET /v1/stacks and GET /v1/stacks/{name} with 32 concurrent
   readers while four runs are in progress. Target p99 < 50 ms.
4. Unit-test speed: the mocks suite of the six cases (target < 20 s) and one program's cold
   start, imports and construction under mocks (target < 2 s).
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from components import CASES  # noqa: E402
from service.worker import DEFAULT_RUN_NICENESS  # noqa: E402  (the production setting, measured)
from tests.engine import Workspace, toolchain_bin  # noqa: E402
from tests.service_harness import ADMIN_TOKEN, Service  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
MOCKS_SUITE = ["tests/test_todo_app.py", "tests/test_blog.py", "tests/test_microservices.py",
               "tests/test_premium_content.py", "tests/test_software_updates.py", "tests/test_big_data_ingestion.py",
               "tests/test_secure_defaults.py", "tests/test_case_args.py"]


def resource_counts() -> dict[str, int]:
    code = ("import json; from tests.mocks import build; from components import CASES; "
            "print(json.dumps({n: len(build(n).mocks.resources) for n in CASES}))")
    import json
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def case_args(case: str, unique: str) -> dict[str, Any]:
    """Example arguments, made unique where AWS wants a unique identity (an SES sender)."""
    args = dict(CASES[case].example_args)
    if "sender_email" in args:
        args["sender_email"] = f"bench-{unique}@myblog.example"
    return args


def cli_stack(root: Path, tools: str, case: str, stack: str) -> Workspace:
    """A new stack of ``case``, made and configured with the CLI (before any timer)."""
    workspace = Workspace(root, tools)
    workspace.new_stack(stack, case, args=case_args(case, f"cli-{root.name}"))
    return workspace


def timed_up(workspace: Workspace, stack: str) -> float:
    """A plain `pulumi up` doing what a service run does: the same program, with the project's policy pack."""
    started = time.perf_counter()
    workspace.pulumi("up", "--yes", "--skip-preview", "--policy-pack", str(REPO / "policies"), "--stack", stack)
    return time.perf_counter() - started


def cli_up(root: Path, tools: str, case: str, stack: str) -> float:
    return timed_up(cli_stack(root, tools, case, stack), stack)


def service_up(api: Any, case: str, name: str) -> float:
    started = time.perf_counter()
    run = api.post("/v1/stacks", json={"name": name, "case": case, "arguments": case_args(case, name)}).json()
    while True:
        status = api.get(f"/v1/runs/{run['id']}").json()["status"]
        if status in ("succeeded", "failed", "cancelled", "interrupted"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if status != "succeeded":
        raise RuntimeError(f"{case} run {status}")
    return elapsed


def settle(service: Service, spares: int) -> Service:
    """Measure from a quiet start: wait until the service's spare workers are started and
    done with their imports and preload (they start while the service is idle, at low
    priority): all of them there, and none used CPU for a second."""
    deadline = time.monotonic() + 120
    before = None
    while time.monotonic() < deadline:
        workers = service.workers()
        now = (sorted(workers), sum(_cpu_seconds(pid) for pid in workers))
        if len(workers) >= spares and now == before:
            break
        before = now
        time.sleep(1.0)
    return service


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(tools: str, work: Path, cases: list[str]) -> list[dict[str, Any]]:
    rows = []
    service = settle(Service(work / "svc-overhead", tools, max_parallel_runs=1, run_niceness=DEFAULT_RUN_NICENESS).start(), 1)
    try:
        with service.client() as api:
            for case in cases:
                cli, svc = [], []
                for i in range(REPEATS):  # interleaved, side by side
                    cli.append(cli_up(work / f"cli-{case}-{i}", tools, case, f"bench{i}"))
                    svc.append(service_up(api, case, f"ovh-{case}-{i}"))
                    settle(service, 1)  # its next spare starts now, not during the next CLI run
                rows.append({"case": case, "cli": statistics.median(cli), "service": statistics.median(svc),
                             "ratio": statistics.median(svc) / statistics.median(cli)})
    finally:
        service.stop()
    return rows


def parallel(tools: str, work: Path, case: str) -> dict[str, Any]:
    service = settle(Service(work / "svc-parallel", tools, max_parallel_runs=4, run_niceness=DEFAULT_RUN_NICENESS).start(), 4)
    try:
        with service.client() as api:
            single = service_up(api, case, "par-single")
            settle(service, 4)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                clients = [service.client() for _ in range(4)]
                times = list(pool.map(lambda i: service_up(clients[i], case, f"par-{i}"), range(4)))
                for c in clients:
                    c.close()
            makespan = time.perf_counter() - started
    finally:
        service.stop()
    return {"case": case, "single": single, "per_stack": times, "makespan": makespan, "ratio": makespan / single}


def parallel_cli(tools: str, work: Path, case: str) -> dict[str, Any]:
    """The same four-at-once measure for the plain CLI: the floor the engine sets here."""
    single = cli_up(work / "cli-par-single", tools, case, "single")
    workspaces = [cli_stack(work / f"cli-par-{i}", tools, case, "par") for i in range(4)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        times = list(pool.map(lambda workspace: timed_up(workspace, "par"), workspaces))
    makespan = time.perf_counter() - started
    return {"case": case, "single": single, "per_stack": times, "makespan": makespan, "ratio": makespan / single}


def populate(service: Service, count: int, tenant: str = "admin") -> None:
    """``count`` stacks of the tenant, written straight into the service's database (as earlier runs
    would have left them): a tenant at scale, without ``count`` engine runs."""
    from service.db import Database, StackRecord, utcnow

    db = Database(service.env.get("SERVERLESS_CASES_DATABASE_URL") or f"sqlite:///{service.data_dir / 'service.db'}")
    now = utcnow()
    with db.session() as session:
        session.add_all(StackRecord(tenant_id=tenant, name=f"s{i:05d}", pulumi_stack=f"{tenant}.s{i:05d}",
                                    case="todo-app", target="sandbox", args={"cache_ttl_seconds": 60},
                                    secret_arg_names=[], status="ready", outputs={"api_url": f"https://x/{i}"},
                                    resource_count=40, created_at=now, updated_at=now) for i in range(count))
    db.dispose()


def responsiveness(tools: str, work: Path, case: str, stacks: int = 0, **settings: Any) -> dict[str, Any]:
    """32 readers, each sending its next GET when the previous one answered, for as long as
    four runs are in progress: a stack read and the list's first page (``limit=100``), in a
    tenant of ``stacks`` more stacks. The readers are asyncio tasks on one aiohttp session: a
    client cheaper than the server it measures, so the figures are the service's."""
    service = Service(work / f"svc-reads-{stacks}", tools, max_parallel_runs=4, run_niceness=DEFAULT_RUN_NICENESS,
                      **settings).start()
    if stacks:
        populate(service, stacks)
    settle(service, 4)
    latencies: dict[str, list[float]] = {"list": [], "read": []}
    try:
        with service.client() as api:
            service_up(api, case, "readable")
            runs = [api.post("/v1/stacks", json={"name": f"busy-{i}", "case": case,
                                                 "arguments": case_args(case, f"busy-{i}")}).json()
                    for i in range(4)]
            while any(api.get(f"/v1/runs/{run['id']}").json()["status"] == "queued" for run in runs):
                time.sleep(0.05)
            done = threading.Event()

            async def readers() -> None:
                headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                async with aiohttp.ClientSession(service.base_url, headers=headers,
                                                 connector=aiohttp.TCPConnector(limit=64)) as session:

                    async def reader(n: int) -> None:
                        for i in range(5000):  # bounded traffic
                            if done.is_set():
                                return
                            kind, path = ("list", "/v1/stacks?limit=100") if (n + i) % 2 else \
                                ("read", "/v1/stacks/readable")
                            started = time.perf_counter()
                            async with session.get(path) as response:
                                await response.read()
                                assert response.status == 200
                            latencies[kind].append(time.perf_counter() - started)

                    await asyncio.gather(*(reader(n) for n in range(32)))

            load = threading.Thread(target=asyncio.run, args=(readers(),))
            load.start()
            for run in runs:
                while api.get(f"/v1/runs/{run['id']}").json()["status"] in ("queued", "running"):
                    time.sleep(0.2)
            done.set()
            load.join()
    finally:
        service.stop()

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {k: {"n": len(v), "p50": pct(v, 0.50), "p99": pct(v, 0.99)} for k, v in latencies.items()}


def unit_speed() -> dict[str, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *MOCKS_SUITE], cwd=REPO,
                   check=True, capture_output=True)
    suite = time.perf_counter() - started
    code = ("import time; t=time.perf_counter(); from tests.mocks import build; "
            "build('blog'); print(time.perf_counter()-t)")
    code_imports = ("import time; t=time.perf_counter(); import pulumi, pulumi_aws; import components; "
                    "print(time.perf_counter()-t)")
    in_process, process, imports = [], [], []
    for _ in range(REPEATS):  # fresh processes: every one is a cold start
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        process.append(time.perf_counter() - started)
        in_process.append(float(out.stdout.strip().splitlines()[-1]))
        done = subprocess.run([sys.executable, "-c", code_imports], cwd=REPO, capture_output=True, text=True,
                              check=True)
        imports.append(float(done.stdout.strip().splitlines()[-1]))
    return {"suite": suite, "cold_start_in_process": statistics.median(in_process),
            "cold_start_process": statistics.median(process), "imports": statistics.median(imports)}


def main() -> int:
    tools = toolchain_bin()
    counts = resource_counts()
    smallest, largest = min(counts, key=counts.__getitem__), max(counts, key=counts.__getitem__)
    with tempfile.TemporaryDirectory(prefix="sc-bench-") as tmp:
        work = Path(tmp)
        over = overhead(tools, work, [smallest, largest])
        par = parallel(tools, work, smallest)
        par_cli = parallel_cli(tools, work, smallest)
        reads = responsiveness(tools, work, smallest)
    unit = unit_speed()
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; sandbox target; medians of {REPEATS} interleaved runs.",
        "",
        "| measure | figures | target |",
        "| --- | --- | --- |",
    ]
    for row in over:
        lines.append(f"| control-plane overhead, {row['case']} ({counts[row['case']]} resources) | service "
                     f"{row['service']:.2f} s / CLI {row['cli']:.2f} s = **{row['ratio']:.2f}** | <= 1.10 |")
    lines.append(f"| parallel runs, 4 x {par['case']} | one {par['single']:.2f} s; each "
                 f"{', '.join(f'{t:.2f}' for t in par['per_stack'])} s; makespan {par['makespan']:.2f} s = "
                 f"**{par['ratio']:.2f}** | <= 2.2 |")
    lines.append(f"| reference: the plain CLI, 4 x {par_cli['case']} at once (no target) | one "
                 f"{par_cli['single']:.2f} s; each {', '.join(f'{t:.2f}' for t in par_cli['per_stack'])} s; makespan "
                 f"{par_cli['makespan']:.2f} s = **{par_cli['ratio']:.2f}** | |")
    for kind, label in (("list", "GET /v1/stacks"), ("read", "GET /v1/stacks/{name}")):
        r = reads[kind]
        lines.append(f"| {label}, 32 readers, 4 runs in progress | n={r['n']}, p50 {r['p50']:.1f} ms, "
                     f"**p99 {r['p99']:.1f} ms** | p99 < 50 ms |")
    lines.append(f"| mocks suite, six cases | **{unit['suite']:.1f} s** | < 20 s |")
    lines.append(f"| program cold start (blog under mocks, median of fresh processes) | imports + construction "
                 f"**{unit['cold_start_in_process']:.2f} s** "
                 f"(of which pulumi + pulumi_aws + components imports {unit['imports']:.2f} s); whole process "
                 f"{unit['cold_start_process']:.2f} s | < 2 s |")
    report = "\n".join(lines)
    print(report)
    (REPO / "benchmarks" / "latest.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
