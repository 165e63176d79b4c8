"""The only module that talks to ``pulumi.automation``.

It runs one operation (a *job*) on one stack of the ``serverless-cases`` project: the
stack's own workspace folder holds a generated ``Pulumi.yaml`` pointing at the repository's
program, so stacks made here are ordinary stacks of the project on the configured backend.
Updates and previews run that program inline (:func:`programs.program.main`, in this
process, through the Automation API's language server), with its imports done before the
job arrived; ``pulumi up`` in the workspace runs the very same function through the
language host. The worker process (:mod:`service.worker`) calls :func:`run_job`; nothing
in the API process imports this module.

Engine events are reduced to a curated JSON shape (operation, URN, type, names of changed
properties, diagnostics, summary): property values are never copied out, so secrets in
resource inputs cannot leak through events.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi.log
from pulumi import automation as auto
from pulumi.automation._config import _SECRET_SENTINEL
from pulumi.automation._stack import StackInitMode  # the public Stack constructor's mode type
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key  # the engine's secret envelope

from programs import backend, program, targets

Emit = Callable[[dict[str, Any]], None]
LOG = logging.getLogger("serverless_cases.engine")
CONFIG = targets.CONFIG_NAMESPACE
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CHANGE_OPS = ("create", "update", "delete", "replace", "create-replacement", "delete-replaced",
              "import", "read", "refresh", "discard")


@dataclass
class Job:
    run_id: str
    kind: str  # up | update | preview | refresh | destroy | recover
    pulumi_stack: str
    case: str
    target: str
    workspace_dir: str
    env: dict[str, str]
    toolchain_bin: str
    parallel: int
    """Resource operations the engine carries out at once (the service's ``run_parallelism``)."""
    args: dict[str, Any] = field(default_factory=dict)
    secret_args: dict[str, Any] = field(default_factory=dict)
    secrets_provider: str | None = None
    secret_arg_names: list[str] = field(default_factory=list)
    """The secret arguments this run applies: new values in ``secret_args``, the others kept in the
    stack's config from earlier runs."""
    kept_secret_names: list[str] = field(default_factory=list)
    """Secret arguments whose values stay kept though this run does not apply them (those the
    stack's last successful run applied: a failed change goes back to them)."""
    unprotect: bool = False
    """A destroy that first turns the case's deletion protection off (an update), as asked."""
    assume_roles: list[dict[str, str]] = field(default_factory=list)
    """The AWS provider's ``assumeRoles``: the tenant's own role (``service.identities``)."""
    policy_packs: list[str] = field(default_factory=list)
    """Policy packs every preview, up and update runs with (``service.policy``)."""
    policy_pack_configs: list[str] = field(default_factory=list)
    """A configuration file for each pack, in the same order."""
    stack_settings: str | None = None
    """The stack's settings file as the service keeps it (any node may run the job: the workspace is rebuilt)."""
    recover_first: bool = False
    """The run's first execution ended with its node: recover the stack (lock, pending creates) first."""


class JobError(Exception):
    """A failed job: ``type`` names the failure for the caller, ``detail`` explains it, ``summary``
    is what the run learnt before it failed (the policy violations that stopped it)."""

    def __init__(self, type_: str, detail: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.type = type_
        self.detail = detail
        self.summary = summary or {}


SECRET_SENTINEL = _SECRET_SENTINEL  # how events (and `stack output --json`) show a secret value


class ReportedStack(auto.Stack):
    """A stack whose operations take their outputs and result from the engine's own events.

    ``Stack.up``, ``refresh`` and ``destroy`` end by reading the outputs back (``stack output``,
    twice) and the result (``stack history``): three more CLI processes, each loading the
    backend, after every operation. The events already carry both: the root stack's outputs
    event lists its outputs (secret values masked) and the summary event the changes.
    """

    reported_outputs: auto.OutputMap | None = None
    reported_summary: dict[str, Any] | None = None

    def outputs(self) -> auto.OutputMap:
        if self.reported_outputs is not None:
            return self.reported_outputs
        return super().outputs()

    def info(self, show_secrets: bool = True) -> auto.UpdateSummary | None:
        if self.reported_summary is None:
            return super().info(show_secrets)
        return auto.UpdateSummary(kind=self.reported_summary["kind"], start_time=self.reported_summary["start"],
                                  end_time=self.reported_summary["end"], message="", environment={}, config={},
                                  result="succeeded", resource_changes=self.reported_summary["resource_changes"])


Cli = auto.PulumiCommand  # the CLI a worker runs, named for modules that must not import the Automation API


def command(toolchain_bin: str) -> Cli:
    """The pinned CLI (constructing it runs `pulumi version`; the fork server does this ahead)."""
    return auto.PulumiCommand(root=str(Path(toolchain_bin).parent))


def _stack(job: Job, *, new: bool, pulumi: auto.PulumiCommand | None = None) -> ReportedStack:
    work_dir = Path(job.workspace_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "Pulumi.yaml").write_text(targets.project_file())
    if job.stack_settings is not None:  # the service's copy is the stack's truth, whichever node ran it last
        settings_file(job).write_text(job.stack_settings)
    workspace = auto.LocalWorkspace(work_dir=str(work_dir), env_vars={**targets.runtime_env(), **job.env},
                                    pulumi_command=pulumi or command(job.toolchain_bin),
                                    secrets_provider=job.secrets_provider)
    # A new stack is created (and must not exist yet). Any other run selects the stack, or
    # creates it empty if a first `up` stopped before it existed on the backend (cancelled,
    # or interrupted by a crash while it started): the service's record says the stack exists.
    return ReportedStack(job.pulumi_stack, workspace, StackInitMode.CREATE if new else StackInitMode.CREATE_OR_SELECT)


def settings_file(job: Job) -> Path:
    """The stack's settings file in the job's workspace (its encryption salt, arguments, secrets' ciphertext)."""
    return Path(job.workspace_dir) / f"Pulumi.{job.pulumi_stack}.yaml"


def stack_settings(job: Job) -> str | None:
    """The stack's settings file as the run left it, for the service to keep."""
    try:
        return settings_file(job).read_text()
    except OSError:
        return None


SECRET_ARGS = f"{CONFIG}:secretArgs"
SECRET_VALUES = f"{CONFIG}:secretValues"
"""Every secret argument value the stack keeps (encrypted), of which ``secretArgs`` holds the ones
the program applies: a secret turned plain or removed leaves the program, and a failed change that
dropped one can go back to it."""


def _configure(stack: auto.Stack, job: Job, on_secrets: Callable[[list[str]], None]) -> None:
    # Plain values go straight into the stack's settings file (what `config set` would write,
    # without a CLI process); encryption salt or key and secure values are kept as they are.
    workspace = stack.workspace
    try:
        settings = workspace.stack_settings(stack.name)
    except FileNotFoundError:
        settings = auto.StackSettings()
    kept: dict[str, Any] = {}
    applied_before: dict[str, Any] = {}
    if {SECRET_ARGS, SECRET_VALUES} & set(settings.config or {}):  # decrypting takes a CLI call
        current = stack.get_all_config()
        applied_before = json.loads(current[SECRET_ARGS].value or "{}") if SECRET_ARGS in current else {}
        kept = {**applied_before, **(json.loads(current[SECRET_VALUES].value or "{}") if SECRET_VALUES in current else {})}
    values = {**kept, **job.secret_args}
    on_secrets([str(v) for v in values.values()])  # kept secrets are scrubbed from output too
    missing = sorted(set(job.secret_arg_names) - set(values))
    if missing:
        raise JobError("MissingSecretArgument", f"no value is kept for the secret argument(s) {', '.join(missing)}: "
                       "give them again in secret_arguments")
    keep = set(job.secret_arg_names) | set(job.kept_secret_names)
    values = {k: v for k, v in values.items() if k in keep}
    applied = {k: values[k] for k in job.secret_arg_names}
    settings.config = {**(settings.config or {}), f"{CONFIG}:target": job.target, f"{CONFIG}:case": job.case,
                       f"{CONFIG}:args": json.dumps(job.args)}
    if job.assume_roles:  # the default AWS provider deploys as the tenant's role, never as the service
        settings.config["aws:assumeRoles"] = job.assume_roles
    else:
        settings.config.pop("aws:assumeRoles", None)
    workspace.save_stack_settings(stack.name, settings)
    # New or changed secret values are encrypted by the CLI, with the stack's key.
    if values != kept:
        _set_secret(stack, SECRET_VALUES, values)
    if applied != applied_before:
        _set_secret(stack, SECRET_ARGS, applied)


def _set_secret(stack: auto.Stack, key: str, value: dict[str, Any]) -> None:
    if value:
        stack.set_config(key, auto.ConfigValue(json.dumps(value), secret=True))
    else:
        stack.remove_config(key)


def event_json(event: auto.EngineEvent) -> dict[str, Any] | None:
    """The curated, value-free JSON form of one engine event (None for events not kept)."""
    base: dict[str, Any] = {"sequence": event.sequence, "timestamp": event.timestamp}
    if event.prelude_event is not None:
        return {**base, "type": "prelude"}
    if event.diagnostic_event is not None:
        d = event.diagnostic_event
        if d.severity == "debug":  # the engine's and SDK's tracing, ~5 per resource; the CLI shows it only with --debug
            return None
        return {**base, "type": "diagnostic", "severity": d.severity, "urn": d.urn,
                "message": _ANSI.sub("", d.message or "").strip()}
    for kind, step in (("resource_pre", event.resource_pre_event), ("resource_outputs", event.res_outputs_event),
                       ("resource_failed", event.res_op_failed_event)):
        if step is not None:
            meta = step.metadata
            op = meta.op.value if hasattr(meta.op, "value") else str(meta.op)
            return {**base, "type": kind, "op": op, "urn": meta.urn, "resource_type": meta.type,
                    "diffs": sorted(meta.diffs or []), "provider": meta.provider}
    if event.summary_event is not None:
        s = event.summary_event
        changes = {(k.value if hasattr(k, "value") else str(k)): v for k, v in (s.resource_changes or {}).items()}
        return {**base, "type": "summary", "resource_changes": changes, "duration_seconds": s.duration_seconds,
                "maybe_corrupt": s.maybe_corrupt}
    if event.cancel_event is not None:
        return {**base, "type": "cancel"}
    if event.policy_event is not None:
        p = event.policy_event
        return {**base, "type": "policy", "policy": p.policy_name, "pack": p.policy_pack_name,
                "level": p.enforcement_level, "urn": p.resource_urn, "message": _ANSI.sub("", p.message or "").strip()}
    return None


class _Collector:
    """Forwards curated events and remembers what the summary needs."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.errors: list[str] = []
        self.changed: list[dict[str, Any]] = []
        self.drift: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.live: set[str] = set()  # URNs of managed resources that exist after the operation
        self.violations: list[dict[str, Any]] = []  # policy violations, mandatory or advisory

        self.stack: ReportedStack | None = None  # told the outputs and summary as they are reported
        self.kind = "update"  # the history kind of the operation: update, refresh or destroy
        self.started: dt.datetime | None = None

    def __call__(self, event: auto.EngineEvent) -> None:
        if self.started is None:
            self.started = dt.datetime.fromtimestamp(event.timestamp, dt.UTC)
        if self.stack is not None:
            self._report(event)
        data = event_json(event)
        if data is None:
            return
        if data["type"] == "diagnostic" and data["severity"] == "error" and data["message"]:
            self.errors.append(data["message"])
        if data["type"] in ("resource_pre", "resource_outputs") and \
                not data["resource_type"].startswith("pulumi:providers:"):
            entry = {"op": data["op"], "urn": data["urn"], "type": data["resource_type"], "diffs": data["diffs"]}
            if data["type"] == "resource_pre" and data["op"] not in ("same", "refresh"):
                self.changed.append(entry)  # a planned or applied change
            elif data["type"] == "resource_outputs" and data["op"] in ("update", "delete"):
                self.drift.append(entry)  # what a refresh found changed (or gone) in the cloud
        if data["type"] == "resource_outputs" and _managed(data["resource_type"]):
            (self.live.discard if data["op"] in ("delete", "delete-replaced", "discard") else self.live.add)(data["urn"])
        if data["type"] == "summary":
            self.counts = data["resource_changes"]
        if data["type"] == "policy":
            violation = {k: data[k] for k in ("policy", "pack", "level", "urn", "message")}
            if violation not in self.violations:  # the engine may report one twice (preview, then update)
                self.violations.append(violation)
        self.emit(data)

    def policy_summary(self) -> dict[str, Any]:
        """What a run's summary says of policy: every violation reported (advisory ones do not stop it)."""
        return {"policy_violations": self.violations} if self.violations else {}

    def mandatory_violations(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["level"] == "mandatory"]


    def _report(self, event: auto.EngineEvent) -> None:
        assert self.stack is not None
        outputs = event.res_outputs_event
        if outputs is not None and outputs.metadata.type == "pulumi:pulumi:Stack" and outputs.metadata.new is not None:
            self.stack.reported_outputs = {
                k: auto.OutputValue(value=None, secret=True) if _holds_secret(v) else auto.OutputValue(v, secret=False)
                for k, v in (outputs.metadata.new.outputs or {}).items()}
        summary = event.summary_event
        if summary is not None:
            self.stack.reported_summary = {
                "kind": self.kind, "start": self.started,
                "end": dt.datetime.fromtimestamp(event.timestamp, dt.UTC),
                "resource_changes": dict(summary.resource_changes or {})}


def _holds_secret(value: Any) -> bool:
    """Whether an output value as events show it holds a secret: the masked sentinel, or the
    engine's secret envelope (signature key and secret signature; its ciphertext is masked)."""
    if value == SECRET_SENTINEL:
        return True
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return True
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _managed(type_token: str) -> bool:
    """A resource some provider manages (not the stack, a component or a provider reference)."""
    return not type_token.startswith(("pulumi:pulumi:", "pulumi:providers:", "serverless-cases:"))


def _outputs(outputs: auto.OutputMap) -> dict[str, Any]:
    return {k: {"value": v.value if not v.secret else None, "secret": v.secret} for k, v in outputs.items()}


AWS_ADVICE = {
    "CloudWatch Logs role ARN must be set in account settings to enable logging":
        "This account and region have no API Gateway logging role yet: deploy a stack of the account-baseline case "
        "once (POST /v1/stacks with case account-baseline), then run this stack again.",
}
"""What to do about an AWS refusal a case can meet, added once to a failed run's detail."""


def translate(exc: Exception, errors: list[str], collector: _Collector | None = None) -> JobError:
    """The one place engine failures become typed errors (raw CLI output is not passed on)."""
    advice = [text for refusal, text in AWS_ADVICE.items() if any(refusal in e for e in errors)]
    detail = "\n".join([*advice, *(e for e in errors if "an unhandled error occurred" not in e)])[:4000]
    stopped_by = collector.mandatory_violations() if collector is not None else []
    if isinstance(exc, auto.CommandError) and collector is not None and stopped_by:
        listing = "\n".join(f"{v['policy']} ({v['pack']}): {v['urn']}: {v['message']}" for v in stopped_by)
        return JobError("PolicyViolation", f"mandatory policies were violated:\n{listing}"[:4000],
                        collector.policy_summary())
    if isinstance(exc, auto.ConcurrentUpdateError):
        return JobError("StackBusy", "another operation holds this stack's lock")
    if isinstance(exc, auto.StackNotFoundError):
        return JobError("StackNotFound", "the stack does not exist on the backend")
    # Not "Cancelled" from the output's wording: after one error the engine cancels sibling
    # operations and says so. Only the worker knows whether a cancel was asked for.
    if isinstance(exc, auto.CommandError):
        return JobError("DeploymentFailed", detail or "the deployment failed; see the run's events")
    return JobError("EngineError", f"{type(exc).__name__} while running the engine")


def _policies(job: Job) -> dict[str, Any]:
    """The policy packs of a preview, up or update (none when the job has none)."""
    if not job.policy_packs:
        return {}
    return {"policy_packs": list(job.policy_packs), "policy_pack_configs": list(job.policy_pack_configs) or None}


def _recover(stack: auto.Stack, collector: _Collector, parallel: int) -> None:
    """Make a stack a killed run left usable: its lock removed, its state refreshed, and creates
    the killed CLI had started dropped (the refresh looks for them in the cloud first)."""
    with contextlib.suppress(auto.CommandError):  # nothing to cancel
        stack.cancel()  # removes a lock left by a killed run (DIY backends: its lock file)
    kind, collector.kind = collector.kind, "refresh"
    try:
        stack.refresh(on_event=collector, color="never", clear_pending_creates=True, suppress_progress=True,
                      parallel=parallel)
    finally:
        collector.kind = kind


def _no_debug_log(*_args: Any, **_kwargs: Any) -> None:
    return None


def quiet_sdk() -> None:
    """Stop the SDK sending its debug logs to the engine, in this process (a worker).

    The SDK sends every ``pulumi.log.debug`` (about five per resource: "registering resource",
    "RegisterResource RPC prepared", ...) to the engine as a synchronous call, and the engine
    turns each into an event that the Automation API reads back; runs keep no debug events
    (:func:`event_json`), so they were two thirds of a run's event traffic for nothing. The SDK's
    own modules call ``log.debug`` through the module, so replacing it there reaches them all.
    ``pulumi up`` through the language host is untouched (``--debug`` shows them)."""
    pulumi.log.debug = _no_debug_log


def run_job(job: Job, emit: Emit, on_secrets: Callable[[list[str]], None] = lambda values: None,
            pulumi: auto.PulumiCommand | None = None) -> dict[str, Any]:
    """Run ``job``; return its result (summary, outputs, resource count) or raise JobError.
    ``on_secrets`` learns every secret value the run handles, so its output can be scrubbed;
    ``pulumi`` is the CLI if the caller made it ahead of time."""
    quiet_sdk()
    collector = _Collector(emit)
    recovering = job.kind == "recover" or job.recover_first
    if recovering:  # before the CLI first reads the state: a killed CLI's half-written metadata
        backend.repair_sidecars(job.env.get("PULUMI_BACKEND_URL", ""))
    try:
        stack = _stack(job, new=job.kind == "up" and not job.recover_first, pulumi=pulumi)
        if job.recover_first and job.kind != "recover":
            _recover(stack, collector, job.parallel)
            collector.counts, collector.changed, collector.drift, collector.started = {}, [], [], None
            collector.live.clear()  # the operation that follows reports every resource again
        if job.kind != "preview":  # a preview's reported outputs are planned, not the stack's
            collector.stack = stack
            collector.kind = {"refresh": "refresh", "recover": "refresh", "destroy": "destroy"}.get(job.kind, "update")
        if job.kind in ("up", "update"):
            _configure(stack, job, on_secrets)
            up = stack.up(on_event=collector, color="never", suppress_progress=True, program=program.main,
                          parallel=job.parallel, **_policies(job))
            # Stack.up already read the outputs; every resource reported its outputs as it went.
            return {"summary": {"resource_changes": collector.counts, **collector.policy_summary()},
                    "outputs": _outputs(up.outputs), "resource_count": len(collector.live)}
        if job.kind == "preview":
            result = stack.preview(on_event=collector, color="never", program=program.main, parallel=job.parallel,
                                   **_policies(job))
            counts = {(k.value if hasattr(k, "value") else str(k)): v for k, v in result.change_summary.items()}
            summary: dict[str, Any] = {"resource_changes": counts, "changes": collector.changed,
                                       **collector.policy_summary()}
            return {"summary": summary, "outputs": _outputs(stack.outputs()), "resource_count": None}
        if job.kind == "refresh":
            stack.refresh(on_event=collector, color="never", suppress_progress=True, parallel=job.parallel)
            summary = {"resource_changes": collector.counts, "drift": collector.drift, "drifted": bool(collector.drift)}
        elif job.kind == "recover":
            _recover(stack, collector, job.parallel)
            summary = {"resource_changes": collector.counts, "recovered": True}
        elif job.kind == "destroy":
            if job.unprotect:  # the caller chose to lose the data: protection off first, then destroy
                _configure(stack, replace(job, args={**job.args, "deletion_protection": False}), on_secrets)
                stack.up(on_event=collector, color="never", suppress_progress=True, program=program.main,
                         parallel=job.parallel)
            stack.destroy(on_event=collector, color="never", suppress_progress=True, parallel=job.parallel)
            stack.workspace.remove_stack(job.pulumi_stack)
            return {"summary": {"resource_changes": collector.counts}, "outputs": {}, "resource_count": 0,
                    "removed": True}
        else:
            raise JobError("InvalidRun", f"unknown run kind {job.kind!r}")
        return {"summary": summary, "outputs": _outputs(stack.outputs()), "resource_count": len(collector.live)}
    except JobError:
        raise
    except Exception as exc:
        # The raw engine output goes to the worker's stderr (the service log), never to callers.
        LOG.warning("run %s (%s) failed: %s", job.run_id, job.kind, exc)
        raise translate(exc, collector.errors, collector) from None
