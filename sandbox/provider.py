"""The sandbox resource provider: a Pulumi provider plugin for the ``aws`` package that
records resources instead of calling AWS.

The engine starts it as ``pulumi-resource-aws`` (see ``sandbox/bin``), reads the port it
prints, and drives it over gRPC like the real provider: configure, check (autonaming and
AWS's own validation), diff (property by property, with replacement where AWS forces it),
create/read/update/delete against :class:`sandbox.cloud.SandboxCloud`, and the invokes the
components call. What AWS computes (ARNs, endpoints, ids) comes from
:mod:`sandbox.synthesis`, the module the unit-test mocks use too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from concurrent import futures
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2

from sandbox import rules, synthesis
from sandbox.cloud import Record, ResourceExistsError, SandboxCloud
from toolchain.engine_watchdog import watch_engine
from toolchain.protos import load

BUCKET = "aws:s3/bucket:Bucket"

if TYPE_CHECKING:
    from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc
else:  # without the rest of the SDK (see toolchain/protos.py)
    plugin_pb2, provider_pb2, provider_pb2_grpc = load("plugin_pb2", "provider_pb2", "provider_pb2_grpc")

# Tests learn which plugin binary the engine launched: each start appends the identity
# ($SANDBOX_PROVIDER_IDENTITY, default "sandbox") to $SANDBOX_LAUNCH_LOG when that is set.
IDENTITY_ENV = "SANDBOX_PROVIDER_IDENTITY"
LAUNCH_LOG_ENV = "SANDBOX_LAUNCH_LOG"
# Simulated AWS API latency for create/update/delete, in milliseconds (default none).
LATENCY_ENV = "SANDBOX_LATENCY_MS"
# A folder that can hold operations (see OperationGate); unset, nothing is ever held.
GATE_ENV = "SANDBOX_GATE_DIR"


class OperationGate:
    """Holds create/update/delete operations while ``<dir>/closed`` exists, so a drill (or a
    test) can keep a run in progress for as long as it needs, without racing the clock.

    ``closed`` may hold a number: that many operations of this provider pass before the gate
    holds the rest (a run can be caught mid-resources). Each held operation leaves a file in
    ``<dir>/held/``, so whoever closed the gate can wait until a run has really reached it.
    Held operations go on when ``closed`` is removed, or when the engine signals cancellation
    (the provider's ``Cancel`` RPC, sent on the CLI's first SIGINT): a cancelled run's
    in-flight operations then finish, as real AWS calls would, and the engine starts no more.
    """

    POLL_SECONDS = 0.05

    def __init__(self, folder: str | None) -> None:
        self.folder = Path(folder) if folder else None
        self._released = threading.Event()
        self._passed = 0
        self._count_lock = threading.Lock()

    def release(self) -> None:
        self._released.set()

    def _allowance(self) -> int | None:
        """Operations let through before holding, or None while the gate is open."""
        assert self.folder is not None
        try:
            text = (self.folder / "closed").read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else 0

    def pass_through(self, urn: str) -> None:
        if self.folder is None or self._released.is_set():
            return
        allowance = self._allowance()
        with self._count_lock:
            if allowance is None or self._passed < allowance:
                self._passed += 1
                return
        held = self.folder / "held"
        held.mkdir(parents=True, exist_ok=True)
        (held / hashlib.sha256(f"{os.getpid()} {urn}".encode()).hexdigest()[:20]).write_text(urn)
        while self._allowance() is not None and not self._released.wait(self.POLL_SECONDS):
            pass


RPC_THREADS = 256 + 16
"""Every call to a plugin holds one of its threads while it lasts (threads start as they are
needed). AWS's provider takes as many operations at once as the engine sends (``RUN_PARALLELISM``,
at most 256): the sandbox must too, with threads to spare for the engine's other calls. With 16,
a provider's 17th operation waited for a thread, and when 16 operations were held (by the gate,
or by simulated latency) the engine's ``Cancel`` waited behind them: a cancelled run's engine
then never stopped and was killed after the grace period, its stack lock left behind."""


def _simulate_latency() -> None:
    millis = int(os.environ.get(LATENCY_ENV) or 0)
    if millis > 0:
        time.sleep(millis / 1000)


def provider_version() -> str:
    """At least the version of the pulumi-aws SDK the program was written against."""
    try:
        return metadata.version("pulumi-aws")
    except metadata.PackageNotFoundError:  # pragma: no cover - the SDK is a dependency
        return "7.51.1"


def _to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct) if struct is not None else {}


def _to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(value)))
    return struct


def _as_aws_keeps_it(record: Record) -> Record:
    """The record AWS would keep for an accepted request (``sandbox.rules`` effects): what a
    later read returns. The create or update itself answers with what was asked, as the
    provider does, so a difference shows up as drift on refresh."""
    return Record(record.type, record.id, record.urn, rules.effective(record.type, record.inputs),
                  rules.effective(record.type, record.outputs))


def _name_of(urn: str, name: str) -> str:
    return name or urn.rsplit("::", 1)[-1]


def _type_of(urn: str, type_: str) -> str:
    return type_ or urn.split("::")[-2].rsplit("$", 1)[-1]


def diff_properties(type_token: str, olds: Mapping[str, Any], news: Mapping[str, Any],
                    ignore: set[str] | frozenset[str] = frozenset()) -> provider_pb2.DiffResponse:
    """Compare old and new inputs key by key; replacement where AWS forces it."""
    skip = {synthesis.DEFAULTS_KEY, *ignore}
    forces = synthesis.replacement_properties(type_token)
    detailed: dict[str, provider_pb2.PropertyDiff] = {}
    for key in sorted((set(olds) | set(news)) - skip):
        old, new = olds.get(key), news.get(key)
        if old == new:
            continue
        replace = key in forces
        if key not in olds:
            kind = provider_pb2.PropertyDiff.ADD_REPLACE if replace else provider_pb2.PropertyDiff.ADD
        elif key not in news:
            kind = provider_pb2.PropertyDiff.DELETE_REPLACE if replace else provider_pb2.PropertyDiff.DELETE
        else:
            kind = provider_pb2.PropertyDiff.UPDATE_REPLACE if replace else provider_pb2.PropertyDiff.UPDATE
        detailed[key] = provider_pb2.PropertyDiff(kind=kind, inputDiff=True)
    if not detailed:
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE, hasDetailedDiff=True)
    replaces = [k for k in detailed if k in forces]
    name_prop = synthesis.spec_for(type_token).name_property
    user_named = name_prop is not None and name_prop not in (news.get(synthesis.DEFAULTS_KEY) or [])
    return provider_pb2.DiffResponse(
        changes=provider_pb2.DiffResponse.DIFF_SOME,
        diffs=sorted(detailed),
        replaces=replaces,
        deleteBeforeReplace=bool(replaces) and user_named,
        detailedDiff=detailed,
        hasDetailedDiff=True,
    )


class SandboxProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self) -> None:
        self.region = synthesis.DEFAULT_REGION
        self.identity = rules.DEFAULT_IDENTITY
        self._cloud: SandboxCloud | None = None
        self._lock = threading.Lock()
        self.gate = OperationGate(os.environ.get(GATE_ENV))

    @property
    def cloud(self) -> SandboxCloud:
        with self._lock:
            if self._cloud is None:
                self._cloud = SandboxCloud(region=self.region, identity=self.identity)
            return self._cloud

    # -- plugin and configuration ---------------------------------------------------------------
    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=provider_version())

    def GetSchema(self, request, context):
        return provider_pb2.GetSchemaResponse(schema=json.dumps({"name": "aws", "version": provider_version()}))

    def CheckConfig(self, request, context):
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request, context):
        olds, news = _to_dict(request.old_inputs) or _to_dict(request.olds), _to_dict(request.news)
        changed = sorted(k for k in set(olds) | set(news) if olds.get(k) != news.get(k) and k != "version")
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_SOME, diffs=changed)

    def Configure(self, request, context):
        variables = dict(request.variables)
        args = _to_dict(request.args)
        self.region = args.get("region") or variables.get("aws:region") or os.environ.get(
            "AWS_REGION", synthesis.DEFAULT_REGION)
        chain = args.get("assumeRoles") or variables.get("aws:assumeRoles") or []
        if isinstance(chain, str):
            chain = json.loads(chain)
        if chain:  # the last role of the chain is who makes the calls
            last = chain[-1]
            try:
                self.identity = rules.Identity.assuming(str(last.get("roleArn")),
                                                        str(last.get("sessionName") or "sandbox"))
            except ValueError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"ValidationError: assumeRoles: {exc}")
        return provider_pb2.ConfigureResponse(acceptSecrets=False, supportsPreview=True,
                                              acceptResources=False, acceptOutputs=False)

    def _in_region(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The request as AWS sees it: made in the resource's region (its own ``region``, else the
        provider's)."""
        return {**inputs, "region": inputs.get("region") or self.region}

    # -- resources ----------------------------------------------------------------------------
    def Check(self, request, context):
        type_token = _type_of(request.urn, request.type)
        news = _to_dict(request.news)
        olds = _to_dict(request.olds)
        try:
            inputs = synthesis.autoname(type_token, _name_of(request.urn, request.name), news,
                                        seed=request.randomSeed, olds=olds)
        except synthesis.AutonameTooLongError as exc:
            return provider_pb2.CheckResponse(inputs=_to_struct(news), failures=[
                provider_pb2.CheckFailure(property=exc.property, reason=str(exc))])
        failures = [provider_pb2.CheckFailure(property=prop, reason=reason)
                    for prop, reason in synthesis.check(type_token, inputs)]
        return provider_pb2.CheckResponse(inputs=_to_struct(inputs), failures=failures)

    def Diff(self, request, context):
        type_token = _type_of(request.urn, request.type)
        olds = _to_dict(request.old_inputs) or _to_dict(request.olds)
        return diff_properties(type_token, olds, _to_dict(request.news), set(request.ignoreChanges))

    def Create(self, request, context):
        type_token = _type_of(request.urn, request.type)
        name = _name_of(request.urn, request.name)
        inputs = _to_dict(request.properties)
        if request.preview:  # what AWS computes is not known until it exists
            planned = synthesis.outputs(type_token, name, inputs, synthesis.UNKNOWN, self.region, request.urn,
                                        self.identity.account)
            unknown = {k: synthesis.UNKNOWN for k in planned if k not in inputs}
            return provider_pb2.CreateResponse(properties=_to_struct({**planned, **unknown}))
        self.gate.pass_through(request.urn)
        _simulate_latency()
        refused = rules.call_violations(type_token, self._in_region(inputs), self.cloud)
        counted = type_token in rules.QUOTAS
        with self.cloud.quota_lock() if counted else contextlib.nullcontext():
            if counted:
                try:
                    exceeded = rules.quota_exceeded(type_token, self.cloud.count_in_account(type_token),
                                                    rules.quota_limits(os.environ))
                except ValueError as exc:  # SANDBOX_QUOTAS is not what it must be
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                refused += [exceeded] if exceeded is not None else []
            if refused:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(map(str, refused)))
            rid = synthesis.resource_id(type_token, name, inputs, self.region, request.urn, self.identity.account)
            outputs = synthesis.outputs(type_token, name, inputs, rid, self.region, request.urn, self.identity.account)
            try:
                self.cloud.put(_as_aws_keeps_it(Record(type_token, rid, request.urn, inputs, outputs)),
                               must_be_new=not synthesis.is_settings(type_token))
            except ResourceExistsError as exc:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        return provider_pb2.CreateResponse(id=rid, properties=_to_struct(outputs))

    def Read(self, request, context):
        type_token = _type_of(request.urn, request.type)
        record = self.cloud.get(type_token, request.id)
        if record is None:  # gone from "the cloud": the engine drops it from state
            return provider_pb2.ReadResponse()
        refused = rules.read_violations(type_token, record.outputs, self.cloud)
        if refused:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "; ".join(map(str, refused)))
        return provider_pb2.ReadResponse(id=record.id, properties=_to_struct(record.outputs),
                                         inputs=_to_struct(record.inputs))

    def Update(self, request, context):
        type_token = _type_of(request.urn, request.type)
        name = _name_of(request.urn, request.name)
        inputs = _to_dict(request.news)
        outputs = synthesis.outputs(type_token, name, inputs, request.id, self.region, request.urn,
                                    self.identity.account)
        if request.preview:
            return provider_pb2.UpdateResponse(properties=_to_struct(synthesis.unknown_if_derived(outputs)))
        self.gate.pass_through(request.urn)
        _simulate_latency()
        refused = rules.call_violations(type_token, self._in_region(inputs), self.cloud)
        if refused:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(map(str, refused)))
        self.cloud.put(_as_aws_keeps_it(Record(type_token, request.id, request.urn, inputs, outputs)))
        return provider_pb2.UpdateResponse(properties=_to_struct(outputs))

    def Delete(self, request, context):
        self.gate.pass_through(request.urn)
        type_token = _type_of(request.urn, request.type)
        record = self.cloud.get(type_token, request.id)
        refused = rules.delete_violations(type_token, record.outputs, self.cloud) if record is not None else []
        if refused:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "; ".join(map(str, refused)))
        if type_token == BUCKET and record is not None and record.outputs.get("forceDestroy"):
            self.cloud.empty(str(record.outputs.get("bucket")))  # the AWS provider deletes every object first
        self.cloud.delete(type_token, request.id)
        return empty_pb2.Empty()

    # -- data sources -----------------------------------------------------------------------
    def Invoke(self, request, context):
        try:
            result = synthesis.invoke(request.tok, _to_dict(request.args), region=self.region,
                                      identity=self.identity)
        except KeyError:
            failure = provider_pb2.CheckFailure(property="", reason=f"the sandbox does not model {request.tok}")
            return provider_pb2.InvokeResponse(failures=[failure])
        return provider_pb2.InvokeResponse(**{"return": _to_struct(result)})

    def Cancel(self, request, context):
        self.gate.release()
        return empty_pb2.Empty()


def _record_launch() -> None:
    log = os.environ.get(LAUNCH_LOG_ENV)
    if log:
        with open(log, "a") as handle:
            handle.write(os.environ.get(IDENTITY_ENV, "sandbox") + "\n")


def serve() -> int:
    _record_launch()
    positional = [a for a in sys.argv[1:] if not a.startswith("-")]
    if positional:  # the engine passes its address last
        watch_engine(positional[-1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=RPC_THREADS),
                         options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)])
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(SandboxProvider(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Python runs a signal's handler in the main thread, and a main thread blocked in a wait
    # without a timeout is not woken when the kernel hands the signal to one of gRPC's threads:
    # the plugin then never stopped. Waking twice a second lets the handler run.
    while not stop.wait(0.5):
        pass
    # The engine stops plugins once their operations are done and kills them 5 s after its
    # interrupt; leave promptly (records are written atomically, so nothing is half-done).
    server.stop(grace=1).wait(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(serve())
