"""serverless-cases benchmarks (`make bench`): every comparison measured side by side in one
run, on the sandbox target, on this machine. Prints a Markdown report (and writes it to
benchmarks/latest.md).

Sections (`BENCH_ONLY=overhead,reads make bench` runs only those named):

1. `overhead`: control-plane overhead: POST /v1/stacks -> run succeeded, over `pulumi up --yes` of the
   same case through the CLI (smallest and largest case on SQLite, target <= 1.0; the smallest
   with the service on PostgreSQL, target <= 1.1).
2. `parallel`: parallel runs: four stacks created at once; makespan over one stack's time. Target <= 2.2.
3. `reads`: responsiveness: p50/p99 of GET /v1/stacks and GET /v1/stacks/{name} with 32 concurrent
   readers while four runs are in progress. Target p99 < 50 ms.
   and reads at scale: the same with a tenant of 10,000 stacks (GET one stack p99 < 20 ms, one page
   of the list p99 < 50 ms).
4. `capacity`: I/O-bound capacity: 32 stacks at once with simulated AWS latency, on one node and on two
   (PostgreSQL): makespan over one run (<= 1.5) and memory per concurrent run (<= 200 MB); and on
   one node with the runs' Python plugins started fresh instead of forked from the preloaders.
5. `idle`: what a node costs with nothing to do: its processes' CPU over a minute, on SQLite and as
   a fleet's node on PostgreSQL (the database server's beside it).
6. `unit`: unit-test speed: the mocks suite of the six cases (target < 20 s) and one program's cold
   start, imports and construction under mocks (target < 2 s).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from components import CASES  # noqa: E402
from programs import backend  # noqa: E402
from sandbox import rules  # noqa: E402
from service import workers  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.worker import DEFAULT_RUN_NICENESS  # noqa: E402  (the production setting, measured)
from tests.engine import Workspace, toolchain_bin  # noqa: E402
from tests.service_harness import ADMIN_TOKEN, Service  # noqa: E402

RAISED_QUOTAS = json.dumps({type_token: 1000 for type_token in rules.QUOTAS})
"""The sandbox account's quotas: raised, as any account holding this many stacks needs them (the
parallel section makes 25 software-updates stacks in one account, a capacity burst 33; CloudFront
takes 20 response headers policies an account by default)."""

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
CAPACITY_LATENCY_MS = int(os.environ.get("BENCH_CAPACITY_LATENCY_MS", "10000"))
IDLE_SECONDS = 60.0
MOCKS_SUITE = ["tests/test_todo_app.py", "tests/test_blog.py", "tests/test_microservices.py",
               "tests/test_premium_content.py", "tests/test_software_updates.py", "tests/test_big_data_ingestion.py",
               "tests/test_secure_defaults.py", "tests/test_case_args.py"]


def resource_counts() -> dict[str, int]:
    """Resources per reference case. A case that other cases need first (the account baseline, one
    per account and region) is no reference architecture and cannot be deployed four times at once."""
    code = ("import json; from tests.mocks import build; from components import CASES; "
            "from components.catalog import needing; "
            "print(json.dumps({n: len(build(n).mocks.resources) for n in CASES if not needing(n)}))")
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


RUN_PARALLELISM = Settings.model_fields["run_parallelism"].default
STATE_COMPRESSION = Settings.model_fields["state_compression"].default


def timed_up(workspace: Workspace, stack: str) -> float:
    """A plain `pulumi up` doing what a service run does: the same program, with the project's
    policy pack, as many resource operations at once as a service run, its state compressed alike."""
    started = time.perf_counter()
    workspace.pulumi("up", "--yes", "--skip-preview", "--parallel", str(RUN_PARALLELISM),
                     "--policy-pack", str(REPO / "policies"), "--stack", stack,
                     **backend.compression_env(STATE_COMPRESSION))
    return time.perf_counter() - started


def cli_up(root: Path, tools: str, case: str, stack: str) -> float:
    return timed_up(cli_stack(root, tools, case, stack), stack)


def service_up(api: Any, case: str, name: str, poll: float = 0.05, accepted: list[float] | None = None,
               recorded: bool = False) -> float:
    """Create a stack and wait for its run: seconds from the POST to the run's end (the POST's own
    time appended to ``accepted``, if given). The end is when the caller saw the run finished, or
    with ``recorded`` when the service recorded it finished (its ``finished_at``): then how often
    the caller polls does not change the figure, and a slow poll can keep the client's load off
    the machine it measures."""
    started, started_wall = time.perf_counter(), time.time()
    run = api.post("/v1/stacks", json={"name": name, "case": case, "arguments": case_args(case, name)}).json()
    if accepted is not None:
        accepted.append(time.perf_counter() - started)
    while True:
        view = api.get(f"/v1/runs/{run['id']}").json()
        if view["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            break
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    if view["status"] != "succeeded":
        raise RuntimeError(f"{case} run {view['status']}")
    if recorded:
        return dt.datetime.fromisoformat(view["finished_at"]).timestamp() - started_wall
    return elapsed


def settle(service: Service) -> Service:
    """Measure from a quiet start: wait until the service's fork server is started and done
    with its imports (it starts while the service is idle, at low priority), and no worker
    process used CPU for a second."""
    deadline = time.monotonic() + 120
    before = None
    while time.monotonic() < deadline:
        workers = service.workers()
        now = (sorted(workers), sum(_cpu_seconds(pid) for pid in workers))
        if workers and now == before:
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


def overhead(tools: str, work: Path, cases: list[str], label: str = "sqlite", **settings: Any) -> list[dict[str, Any]]:
    rows = []
    service = settle(Service(work / f"svc-overhead-{label}", tools, max_parallel_runs=1, sandbox_quotas=RAISED_QUOTAS,
                             run_niceness=DEFAULT_RUN_NICENESS, **settings).start())
    try:
        with service.client() as api:
            for case in cases:
                cli, svc = [], []
                for i in range(REPEATS):  # interleaved, side by side
                    cli.append(cli_up(work / f"cli-{label}-{case}-{i}", tools, case, f"bench{i}"))
                    svc.append(service_up(api, case, f"ovh-{case}-{i}"))
                    settle(service)  # the run's worker ended: nothing of it runs during the next CLI run
                rows.append({"case": case, "cli": statistics.median(cli), "service": statistics.median(svc),
                             "ratio": statistics.median(svc) / statistics.median(cli)})
    finally:
        service.stop()
    return rows


def parallel(tools: str, work: Path, case: str) -> dict[str, Any]:
    """Four stacks created at once against one alone, ``REPEATS`` times interleaved: the median
    makespan over the median single run (one trial of each varied by half on this machine)."""
    service = settle(Service(work / "svc-parallel", tools, max_parallel_runs=4, run_niceness=DEFAULT_RUN_NICENESS,
                             sandbox_quotas=RAISED_QUOTAS).start())
    singles, makespans, per_stack = [], [], []
    try:
        with service.client() as api:
            for r in range(REPEATS):
                singles.append(service_up(api, case, f"par-single-{r}"))
                settle(service)
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=4) as pool:
                    clients = [service.client() for _ in range(4)]
                    per_stack.append(list(pool.map(lambda client, i, r=r: service_up(client, case, f"par-{r}-{i}"),
                                                   clients, range(4))))
                    for c in clients:
                        c.close()
                makespans.append(time.perf_counter() - started)
                settle(service)
    finally:
        service.stop()
    return _parallel_result(case, singles, makespans, per_stack)


def parallel_cli(tools: str, work: Path, case: str) -> dict[str, Any]:
    """The same four-at-once measure for the plain CLI: the floor the engine sets here."""
    singles, makespans, per_stack = [], [], []
    for r in range(REPEATS):
        singles.append(cli_up(work / f"cli-par-single-{r}", tools, case, "single"))
        workspaces = [cli_stack(work / f"cli-par-{r}-{i}", tools, case, "par") for i in range(4)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            per_stack.append(list(pool.map(lambda workspace: timed_up(workspace, "par"), workspaces)))
        makespans.append(time.perf_counter() - started)
    return _parallel_result(case, singles, makespans, per_stack)


def _parallel_result(case: str, singles: list[float], makespans: list[float],
                     per_stack: list[list[float]]) -> dict[str, Any]:
    single, makespan = statistics.median(singles), statistics.median(makespans)
    return {"case": case, "single": single, "makespan": makespan, "ratio": makespan / single,
            "per_stack": [statistics.median(times) for times in zip(*per_stack, strict=True)],
            "singles": singles, "makespans": makespans}


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


READERS = 32  # half read one stack, half the list's first page


def responsiveness(tools: str, work: Path, case: str, stacks: int = 0, **settings: Any) -> dict[str, Any]:
    """32 readers, each sending its next GET when the previous one answered, for as long as
    four runs are in progress: 16 read a stack, 16 the list's first page (``limit=100``), in a
    tenant of ``stacks`` more stacks. The readers are two wrk processes (one thread each): a
    client far cheaper than the server it measures, so the latencies are the service's; their
    CPU is reported beside them."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: `make bench` installs it (Debian's package wrk)")
    service = Service(work / f"svc-reads-{stacks}", tools, max_parallel_runs=4, run_niceness=DEFAULT_RUN_NICENESS,
                      sandbox_quotas=RAISED_QUOTAS,
                      **settings).start()
    if stacks:
        populate(service, stacks)
    settle(service)
    try:
        with service.client() as api:
            service_up(api, case, "readable")
            runs = [api.post("/v1/stacks", json={"name": f"busy-{i}", "case": case,
                                                 "arguments": case_args(case, f"busy-{i}")}).json()
                    for i in range(4)]
            while any(api.get(f"/v1/runs/{run['id']}").json()["status"] == "queued" for run in runs):
                time.sleep(0.05)
            readers = {kind: _wrk(wrk, service.base_url + path, READERS // 2)
                       for kind, path in (("list", "/v1/stacks?limit=100"), ("read", "/v1/stacks/readable"))}
            started = time.monotonic()
            try:
                for run in runs:
                    while api.get(f"/v1/runs/{run['id']}").json()["status"] in ("queued", "running"):
                        time.sleep(0.2)
            finally:
                seconds = time.monotonic() - started
                cpu = {kind: _cpu_seconds(reader.pid) for kind, reader in readers.items()}
                for reader in readers.values():
                    reader.send_signal(signal.SIGINT)  # wrk stops and reports
                reports = {kind: reader.communicate(timeout=60)[0] for kind, reader in readers.items()}
    finally:
        service.stop()
    results: dict[str, Any] = {kind: _wrk_report(kind, report) for kind, report in reports.items()}
    results["readers_cpu_pct"] = 100 * sum(cpu.values()) / seconds
    return results


def _wrk(wrk: str, url: str, connections: int) -> subprocess.Popen[str]:
    return subprocess.Popen([wrk, "-t1", f"-c{connections}", "-d3600s", "--latency", "--timeout", "10s",
                             "-H", f"Authorization: Bearer {ADMIN_TOKEN}", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


_WRK_TIME = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_report(kind: str, report: str) -> dict[str, Any]:
    """n, p50 and p99 (ms) from wrk's report; an error if any answer was not a 200 or any socket failed."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([0-9.]+(?:us|ms|s))$", report, re.M))
    total = re.search(r"^\s+([0-9]+) requests in ", report, re.M)
    if len(percentiles) != 2 or total is None or "Non-2xx" in report or "Socket errors" in report:
        raise RuntimeError(f"the {kind} readers did not all succeed:\n{report}")

    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
        return float(number) * _WRK_TIME[unit]

    return {"n": int(total.group(1)), "p50": ms(percentiles["50"]), "p99": ms(percentiles["99"])}


def postgres_database() -> tuple[str, Any]:
    """A fresh database on the PostgreSQL of ``make postgres``: (libpq URL, drop function)."""
    import uuid

    import psycopg

    server = subprocess.run([str(REPO / "toolchain" / "ensure-postgres.sh")], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[-1]
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return server.rsplit("/", 1)[0] + f"/{name}", drop


def fleet_settings(cloud: Path) -> tuple[dict[str, str], Any]:
    """Settings for nodes of one fleet on a fresh PostgreSQL database (service tables, run engine
    and stacks' state), the sandbox's cloud in ``cloud``; and the database's drop function."""
    url, drop = postgres_database()
    host = url.removeprefix("postgresql://")
    return {"fleet": "true", "database_url": f"postgresql+psycopg://{host}",
            "backend_url": f"postgres://{host}?sslmode=disable", "passphrase": "bench fleet",
            "sandbox_cloud": str(cloud)}, drop


def idle(tools: str, work: Path, seconds: float = IDLE_SECONDS) -> list[dict[str, Any]]:
    """What a node costs with nothing to do: the CPU of its processes (API, run engine, fork server,
    plugin preloaders) over ``seconds``, in percent of one core; one node on SQLite, and one node of
    a fleet on PostgreSQL with the database server's processes beside it."""
    rows = []
    for label in ("sqlite", "postgres"):
        settings: dict[str, str] = {}
        drop = None
        if label == "postgres":
            settings, drop = fleet_settings(work / "idle-cloud")
        service = settle(Service(work / f"svc-idle-{label}", tools, node_id="bench-idle", sandbox_quotas=RAISED_QUOTAS,
                                 **settings).start())
        try:
            assert service.process is not None
            node = {service.process.pid} | workers.descendants({service.process.pid})
            server = _postgres_processes() if label == "postgres" else set()
            before = sum(map(_cpu_seconds, node)), sum(map(_cpu_seconds, server))
            time.sleep(seconds)
            after = sum(map(_cpu_seconds, node)), sum(map(_cpu_seconds, server))
        finally:
            service.stop()
            if drop is not None:
                drop()
        rows.append({"database": label, "node_pct": 100 * (after[0] - before[0]) / seconds,
                     "database_pct": 100 * (after[1] - before[1]) / seconds, "seconds": seconds})
    return rows


def _postgres_processes() -> set[int]:
    """The PostgreSQL server's processes on this machine (its backends included)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def _memory(pids: set[int], proportional: bool = False) -> int:
    """Resident set (bytes) of ``pids`` summed; with ``proportional``, their proportional set (PSS:
    a page shared by n processes counts 1/n in each, so the sum is the memory they take together)."""
    total = 0
    for pid in pids:
        try:
            if proportional:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                total += next(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))
            else:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, StopIteration):
            continue
    return total


def capacity(tools: str, work: Path, case: str, latency_ms: int, nodes: int, count: int = 32,
             preload: bool = True) -> list[dict[str, Any]]:
    """I/O-bound capacity: ``count`` stacks created at once with every sandbox operation taking
    ``latency_ms`` (AWS's own latency, simulated), on one node or on several (PostgreSQL, as a
    fleet needs): makespan over one run alone, memory per concurrent run (the peak resident set of
    the node's runs, workers, CLIs and plugins, over ``count``, and their proportional set beside it;
    the fork server included), the machine's CPU per run, and the slowest acceptance. Without
    ``preload``, the runs' Python plugins start as fresh interpreters (the side-by-side figure)."""
    settings: dict[str, Any] = {"sandbox_latency_ms": latency_ms, "max_parallel_runs": count // nodes,
                                "run_niceness": DEFAULT_RUN_NICENESS, "preload_plugins": str(preload).lower()}
    drop = None
    if nodes > 1:
        fleet, drop = fleet_settings(work / f"capacity-cloud-{nodes}")
        settings.update(fleet)
    services = [settle(Service(work / f"svc-capacity-{nodes}-{i}-{preload}", tools, node_id=f"bench-{i}",
                               sandbox_quotas=RAISED_QUOTAS, **settings).start())
                for i in range(nodes)]
    try:
        burst = _burst(services, case, count)
    finally:
        for svc in services:
            svc.stop()
        if drop is not None:
            drop()
    return [{"nodes": nodes, "preload": preload, **burst, "ratio": burst["makespan"] / burst["single"],
             "mb_per_run": burst["peak_rss"] / count / 2**20, "pss_mb_per_run": burst["peak_pss"] / count / 2**20,
             "cpu_s_per_run": burst["cpu_s"] / count}]


def _burst(services: list[Service], case: str, count: int) -> dict[str, Any]:
    """One run alone, then ``count`` creates at once spread over the nodes: one run's time, the
    makespan (each run's end as the service recorded it), the slowest acceptance (POST), the peak
    resident and proportional sets of the nodes' runs (every process under a node: workers, CLIs,
    plugins), and the CPU the burst used (the whole machine's, PostgreSQL and the nodes' APIs
    included)."""
    with services[0].client() as api:
        single = service_up(api, case, "cap-single", recorded=True)
    peak_rss = peak_pss = 0
    sampling = threading.Event()
    accepted: list[float] = []

    def sample() -> None:
        nonlocal peak_rss, peak_pss
        rounds = 0
        while not sampling.wait(0.5):
            pids = workers.descendants({svc.process.pid for svc in services if svc.process})
            peak_rss = max(peak_rss, _memory(pids))
            if rounds % 10 == 0:  # every 5 s: reading smaps of ~250 processes costs CPU the runs need
                peak_pss = max(peak_pss, _memory(pids, proportional=True))
            rounds += 1

    def create(i: int) -> tuple[float, float]:
        """The run's time from its POST to its end, and its end (wall clock)."""
        posted = time.time()
        with services[i % len(services)].client() as api:
            # A connection per request: on a saturated machine a poller that wakes late can race the
            # server's keep-alive timeout and find its kept connection reset.
            api.headers["Connection"] = "close"
            # Ends as the service recorded them: 32 pollers every 5 s keep the client's load (it was
            # 32 GETs a second at one poll a second) off the two cores the runs share.
            took = service_up(api, case, f"cap-{i}", poll=5.0, accepted=accepted, recorded=True)
        return took, posted + took

    sampler = threading.Thread(target=sample)
    sampler.start()
    cpu_before = _machine_cpu_seconds()
    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            runs = list(pool.map(create, range(count)))
    finally:
        sampling.set()
        sampler.join()
    return {"single": single, "makespan": max(end for _, end in runs) - started,
            "slowest": max(took for took, _ in runs), "slowest_accept": max(accepted),
            "peak_rss": peak_rss, "peak_pss": peak_pss, "cpu_s": _machine_cpu_seconds() - cpu_before}


def _machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (user, nice, system) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(v) for v in fields[:3]) / os.sysconf("SC_CLK_TCK")


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


SECTIONS = ("overhead", "parallel", "reads", "capacity", "idle", "unit")


def main() -> int:
    """Every section, or those named in BENCH_ONLY (comma-separated). A section that fails is
    reported as failed (with its error) and the others still run; each prints its raw figures
    as soon as it has them."""
    only = {name.strip() for name in os.environ.get("BENCH_ONLY", ",".join(SECTIONS)).split(",") if name.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        print(f"BENCH_ONLY: unknown section(s) {', '.join(sorted(unknown))}; the sections are {', '.join(SECTIONS)}")
        return 2
    tools = toolchain_bin()
    counts = resource_counts()
    smallest, largest = min(counts, key=counts.__getitem__), max(counts, key=counts.__getitem__)
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}

    def measure(section: str, name: str, run: Any) -> None:
        if section not in only:
            return
        try:
            results[name] = run()
            print(f"{name}: {results[name]}", flush=True)
        except Exception as exc:  # reported in the table; the other sections still run
            failed[name] = f"{type(exc).__name__}: {exc}"[:300]
            print(f"{name}: FAILED {type(exc).__name__}: {str(exc)[-6000:]}", flush=True)  # the CLI's error is last

    def overhead_pg() -> list[dict[str, Any]]:
        pg_url, drop = postgres_database()
        try:
            return overhead(tools, work, [smallest], label="postgres",
                            database_url=f"postgresql+psycopg://{pg_url.removeprefix('postgresql://')}")
        finally:
            drop()

    with tempfile.TemporaryDirectory(prefix="sc-bench-") as tmp:
        work = Path(tmp)
        measure("overhead", "over", lambda: overhead(tools, work, [smallest, largest]))
        measure("overhead", "over_pg", overhead_pg)
        measure("parallel", "par", lambda: parallel(tools, work, smallest))
        measure("parallel", "par_cli", lambda: parallel_cli(tools, work, smallest))
        measure("reads", "reads", lambda: responsiveness(tools, work, smallest))
        measure("reads", "many", lambda: responsiveness(tools, work, smallest, stacks=10_000))
        for nodes, preload in ((1, True), (1, False), (2, True)):
            measure("capacity", f"cap{nodes}{'' if preload else '_fresh'}",
                    lambda nodes=nodes, preload=preload: capacity(tools, work, smallest, CAPACITY_LATENCY_MS,
                                                                  nodes=nodes, preload=preload))
        measure("idle", "idle", lambda: idle(tools, work))
    measure("unit", "unit", unit_speed)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; sandbox target; medians of {REPEATS} interleaved runs (capacity: one burst of each).",
        "",
        "| measure | figures | target |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | **failed**: {error} | |" for name, error in failed.items()]
    over, over_pg = results.get("over", []), results.get("over_pg", [])
    par, par_cli = results.get("par"), results.get("par_cli")
    reads, many, unit = results.get("reads"), results.get("many"), results.get("unit")
    cap = results.get("cap1", []) + results.get("cap1_fresh", []) + results.get("cap2", [])
    for row in over:
        lines.append(f"| control-plane overhead, {row['case']} ({counts[row['case']]} resources), SQLite | service "
                     f"{row['service']:.2f} s / CLI {row['cli']:.2f} s = **{row['ratio']:.2f}** | <= 1.0 |")
    for row in over_pg:
        lines.append(f"| control-plane overhead, {row['case']}, PostgreSQL (service tables and run engine; state on "
                     f"the file backend, as the CLI's) | service {row['service']:.2f} s / CLI {row['cli']:.2f} s = "
                     f"**{row['ratio']:.2f}** | <= 1.1 |")
    if par:
        lines.append(f"| parallel runs, 4 x {par['case']} | one (median) {par['single']:.2f} s; each "
                     f"{', '.join(f'{t:.2f}' for t in par['per_stack'])} s; makespan {par['makespan']:.2f} s = "
                     f"**{par['ratio']:.2f}** | <= 2.2 |")
    if par_cli:
        lines.append(f"| reference: the plain CLI, 4 x {par_cli['case']} at once (no target) | one (median) "
                     f"{par_cli['single']:.2f} s; each {', '.join(f'{t:.2f}' for t in par_cli['per_stack'])} s; "
                     f"makespan {par_cli['makespan']:.2f} s = **{par_cli['ratio']:.2f}** | |")
    for kind, label in (("list", "GET /v1/stacks"), ("read", "GET /v1/stacks/{name}")):
        if not reads:
            break
        r = reads[kind]
        lines.append(f"| {label}, 32 readers, 4 runs in progress | n={r['n']}, p50 {r['p50']:.1f} ms, "
                     f"**p99 {r['p99']:.1f} ms** (the readers took {reads['readers_cpu_pct']:.0f}% of a core) "
                     "| p99 < 50 ms |")
    for kind, label, goal in (("read", "GET /v1/stacks/{name}", 20), ("list", "GET /v1/stacks?limit=100", 50)):
        if not many:
            break
        r = many[kind]
        lines.append(f"| {label}, a tenant of 10,000 stacks, 32 readers, 4 runs in progress | n={r['n']}, p50 "
                     f"{r['p50']:.1f} ms, **p99 {r['p99']:.1f} ms** (the readers took {many['readers_cpu_pct']:.0f}% "
                     f"of a core) | p99 < {goal} ms |")
    for row in cap:
        lines.append(f"| capacity: 32 x {smallest} at once, {CAPACITY_LATENCY_MS / 1000:.0f} s per sandbox operation, "
                     f"{row['nodes']} node(s){'' if row['preload'] else ', plugins started fresh (not preloaded)'}"
                     f" | one alone {row['single']:.1f} s; makespan {row['makespan']:.1f} s = "
                     f"**{row['ratio']:.2f}**; memory per concurrent run **{row['mb_per_run']:.0f} MB** resident "
                     f"({row['pss_mb_per_run']:.0f} MB proportional); CPU {row['cpu_s_per_run']:.1f} s per run; slowest "
                     f"acceptance {row['slowest_accept']:.2f} s | <= 1.5; <= 200 MB |")
    for row in results.get("idle", []):
        database = ("SQLite" if row["database"] == "sqlite" else
                    f"PostgreSQL (a fleet's node; the database server's processes {row['database_pct']:.1f}%)")
        lines.append(f"| an idle node, {database}, over {row['seconds']:.0f} s | **{row['node_pct']:.1f}%** of one core | |")
    if unit:
        lines.append(f"| mocks suite, six cases | **{unit['suite']:.1f} s** | < 20 s |")
        lines.append(f"| program cold start (blog under mocks, median of fresh processes) | imports + construction "
                     f"**{unit['cold_start_in_process']:.2f} s** "
                     f"(of which pulumi + pulumi_aws + components imports {unit['imports']:.2f} s); whole process "
                     f"{unit['cold_start_process']:.2f} s | < 2 s |")
    report = "\n".join(lines)
    print(report)
    (REPO / "benchmarks" / "latest.md").write_text(report + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
