"""The durable run engine: DBOS Transact, wrapped here so that no other module imports it.

Every accepted run hands the engine a *ticket*: one workflow (its id is the run's id) in the
``runs`` queue, partitioned by the run's stack, so that a stack runs one workflow at a time
across every node while different stacks run side by side (at most ``parallel`` per node).

A workflow has two steps, each recorded by the engine once it returns:

- ``take``: claim the stack's next queued run in the database's order (``Runner.take``; the
  run records the ticket, so a re-executed ``take`` finds the same run again);
- ``execute``: run it to its end (``Runner.execute``), blocking.

A workflow whose node dies stays ``PENDING``; the engine re-executes it from its last recorded
step (on the same node's next start, or on any node once the dead node's lease has run out:
``recover_node``). ``execute`` then notices it is a re-execution and recovers the stack first.

Which run a ticket executes is decided by the service's database, not by the order tickets
reach the engine: acceptance order is the database's, even when two nodes hand in tickets for
one stack in the other order. A ticket whose run was cancelled while queued simply finds fewer
runs to take (the engine's own cancel is never used: it frees a stack's slot while the Pulumi
CLI is still stopping).

Facts this module depends on were read in dbos 3.4.0 (pinned): partitioned queues order a
partition by ``priority`` then creation time; ``_recover_pending_workflows`` (private) moves a
dead executor's ``PENDING`` workflows back to ``ENQUEUED`` atomically (a second recovery matches
nothing); a ``BaseException`` escaping a step is recorded neither as its outcome nor as the
workflow's, so the workflow stays ``PENDING``; ``application_version`` must be pinned, or
workflows queued before a deploy are not run after it; every dequeue writes a fresh owner token
to the workflow's row (``owner_xid``) and a recovery clears it, so an execution can tell whether
the workflow is still its own (``current_owner_xid``, ``get_workflow_owner``: private).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions
from dbos._context import current_owner_xid
from dbos._dbos import _get_dbos_instance

LOG = logging.getLogger("serverless_cases.durable")

APP_NAME = "serverless-cases"
APP_VERSION = "runs-v1"
"""Pinned: a workflow queued under one version is only run by nodes of the same version. Change it
only with a migration of queued workflows."""
QUEUE = "runs"
WORKFLOW = "serverless-cases.run"
POLL_SECONDS = 1.0
"""How often a node looks for runs to take: a run starts within this long of its acceptance."""
MAX_ENGINE_RECOVERIES = 20
"""The engine's own bound on re-executions of one workflow; the service's (``outcomes.MAX_RECOVERIES``)
is lower and ends the run with a typed error first."""


class NodeStopping(BaseException):
    """Raised out of ``execute`` when this node stops during a run: the workflow stays pending and
    is carried through after the node (or another) takes it up again."""


class Superseded(BaseException):
    """Raised out of ``execute`` by an execution that no longer owns its workflow (its node was
    taken for dead and the workflow went back to the queue): the execution that owns it now, on
    this node or another, carries the run through; this one leaves no outcome."""


Owned = Callable[[], bool]
"""Asks the engine whether the calling execution still owns its workflow."""


@dataclass
class Handlers:
    take: Callable[[str, str], str | None]
    execute: Callable[[str, Owned], None]


_handlers: Handlers | None = None


def _current() -> Handlers:
    if _handlers is None:
        raise RuntimeError("the run engine was not launched on this node")
    return _handlers


@DBOS.step(name="take")
def _take(pulumi_stack: str, ticket: str) -> str | None:
    return _current().take(pulumi_stack, ticket)


@DBOS.step(name="execute")
def _execute(run_id: str) -> None:
    _current().execute(run_id, _ownership())


def _ownership() -> Owned:
    """Whether this execution still owns its workflow. Each dequeue of a workflow writes a fresh
    owner token to its row, and a recovery clears it: the token this execution was started with
    stays the row's only while no other execution has taken the workflow over."""
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None
    token = current_owner_xid(workflow_id)  # private in dbos 3.x, as is the system database: pinned, tested
    system = _get_dbos_instance()._sys_db
    return lambda: token is not None and system.get_workflow_owner(workflow_id) == token


@DBOS.workflow(name=WORKFLOW, max_recovery_attempts=MAX_ENGINE_RECOVERIES)
def _run(pulumi_stack: str) -> None:
    ticket = DBOS.workflow_id
    assert ticket is not None
    run_id = _take(pulumi_stack, ticket)
    if run_id is not None:
        _execute(run_id)


def system_database_url(database_url: str, data_dir: Path) -> str:
    """The engine's system database: SQLite beside the service's (one node), or the service's own
    PostgreSQL database (the engine keeps its tables in the ``dbos`` schema)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{data_dir / 'engine.sqlite'}"
    return database_url


class DurableRuns:
    """Hands tickets to the engine (every node) and executes them (nodes with the ``runs`` role)."""

    def __init__(self, *, database_url: str, data_dir: Path, node_id: str, parallel: int) -> None:
        self.url = system_database_url(database_url, data_dir)
        self.node_id = node_id
        self.parallel = parallel
        self._client: DBOSClient | None = None
        self._launched = False

    # -- every node ------------------------------------------------------------------------
    def open(self) -> None:
        """Create or upgrade the engine's tables and connect the client that hands in tickets."""
        logging.getLogger("dbos").setLevel(logging.WARNING)  # its migrations log each step
        DBOS.migrate(self.url)
        self._client = DBOSClient(system_database_url=self.url, application_name=APP_NAME)

    def submit(self, ticket: str, pulumi_stack: str, *, first: bool = False) -> None:
        """Hand in a ticket for ``pulumi_stack`` (idempotent: a ticket already handed in is kept).
        ``first`` tickets (recoveries) are taken before the stack's other waiting tickets."""
        assert self._client is not None, "open() first"
        options: EnqueueOptions = {"workflow_name": WORKFLOW, "queue_name": QUEUE, "workflow_id": ticket,
                                   "queue_partition_key": pulumi_stack, "app_version": APP_VERSION,
                                   "priority": 1 if first else 2}
        self._client.enqueue(options, pulumi_stack)

    def handed_in(self, tickets: list[str]) -> set[str]:
        """Which of ``tickets`` the engine holds (in any state)."""
        assert self._client is not None, "open() first"
        if not tickets:
            return set()
        return {w.workflow_id for w in self._client.list_workflows(workflow_ids=tickets, load_input=False,
                                                                   load_output=False)}

    # -- nodes that run runs ----------------------------------------------------------------
    def launch(self, handlers: Handlers) -> None:
        """Start executing tickets on this node (its own pending ones first, left by its last life)."""
        global _handlers
        _handlers = handlers
        # The service uses none of the engine's notifications (messages, events, streams): their
        # sender need not wake a hundred times a second (its default) on an idle node.
        config: DBOSConfig = {"name": APP_NAME, "system_database_url": self.url, "executor_id": self.node_id,
                              "application_version": APP_VERSION, "log_level": "WARNING",
                              "notification_listener_polling_interval_sec": 0.2, "notification_coalesce_sec": 1.0}
        DBOS(config=config)
        DBOS.launch()
        # Queues live in the system database (one configuration for the fleet: the last node to start sets it).
        # A look for runs costs about 6 ms of a core in DBOS: once a second (its default) an idle node
        # takes 2% of a core; five times a second it took 4-6%, for a run's start 0.4 s sooner on average.
        DBOS.register_queue(QUEUE, worker_concurrency=self.parallel, partition_concurrency=1,
                            polling_interval_sec=POLL_SECONDS, on_conflict="always_update")
        self._launched = True

    def recover_node(self, node_id: str) -> int:
        """Put a dead node's pending workflows back in the queue (any live node then takes them);
        how many there were. Doing it twice is harmless."""
        return len(DBOS._recover_pending_workflows([node_id]))  # private in dbos 3.x: pinned, tested

    def close(self) -> None:
        global _handlers
        if self._launched:
            DBOS.destroy(workflow_completion_timeout_sec=0)
            self._launched = False
            _handlers = None
        if self._client is not None:
            self._client.destroy()
            self._client = None

