"""The sandbox provider answers like AWS would: deterministic ids and computed attributes,
property-by-property diffs with replacement where AWS forces it, refresh that sees drift."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from programs.targets import REPO_ROOT
from sandbox import synthesis
from sandbox.cloud import SandboxCloud
from sandbox.mocks import SandboxMocks
from sandbox.provider import diff_properties
from tests.engine import Workspace, managed
from tests.service_harness import alive, until

KIND = provider_pb2.PropertyDiff


def _struct(value: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


@pytest.mark.parametrize(("type_token", "prop", "old", "new"), [
    ("aws:s3/bucket:Bucket", "bucket", "site-a", "site-b"),
    ("aws:dynamodb/table:Table", "hashKey", "userId", "accountId"),
    ("aws:dynamodb/table:Table", "rangeKey", "todoId", "itemId"),
    ("aws:lambda/function:Function", "name", "api-1", "api-2"),
])
def test_properties_aws_cannot_change_in_place_force_replacement(type_token: str, prop: str, old: str,
                                                                  new: str) -> None:
    diff = diff_properties(type_token, {prop: old, "tags": {"a": "1"}}, {prop: new, "tags": {"a": "1"}})
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(diff.replaces) == [prop]
    assert diff.detailedDiff[prop].kind == KIND.UPDATE_REPLACE
    assert diff.deleteBeforeReplace  # a user-chosen name must be freed before it is reused


def test_ordinary_changes_update_in_place() -> None:
    diff = diff_properties("aws:lambda/function:Function", {"name": "f", "memorySize": 128},
                           {"name": "f", "memorySize": 256, "timeout": 5})
    assert list(diff.replaces) == []
    assert diff.detailedDiff["memorySize"].kind == KIND.UPDATE
    assert diff.detailedDiff["timeout"].kind == KIND.ADD
    assert sorted(diff.diffs) == ["memorySize", "timeout"]


def test_identical_inputs_have_no_diff() -> None:
    inputs = {"bucket": "b", synthesis.DEFAULTS_KEY: ["bucket"]}
    assert diff_properties("aws:s3/bucket:Bucket", inputs, dict(inputs)).changes == \
        provider_pb2.DiffResponse.DIFF_NONE


def test_autonames_carry_a_suffix_and_survive_updates() -> None:
    first = synthesis.autoname("aws:s3/bucket:Bucket", "Site-Content", {}, seed=b"\x01")
    assert first["bucket"].startswith("site-content-") and len(first["bucket"]) == len("site-content-") + 7
    again = synthesis.autoname("aws:s3/bucket:Bucket", "Site-Content", {}, seed=b"\x02", olds=first)
    assert again["bucket"] == first["bucket"]
    explicit = synthesis.autoname("aws:s3/bucket:Bucket", "x", {"bucket": "mine"})
    assert explicit["bucket"] == "mine" and synthesis.DEFAULTS_KEY not in explicit


def test_computed_attributes_look_like_aws() -> None:
    rid, out = synthesis.create("aws:dynamodb/table:Table", "todos", {"name": "todos-1", "streamEnabled": True},
                                region="eu-west-1")
    assert rid == "todos-1"
    assert out["arn"] == f"arn:aws:dynamodb:eu-west-1:{synthesis.ACCOUNT_ID}:table/todos-1"
    assert out["streamArn"].startswith(out["arn"] + "/stream/")
    _, fn = synthesis.create("aws:lambda/function:Function", "api", {})
    assert fn["invokeArn"].endswith(f"function:{fn['name']}/invocations")
    _, dist = synthesis.create("aws:cloudfront/distribution:Distribution", "cdn", {})
    assert dist["domainName"].endswith(".cloudfront.net") and dist["id"].startswith("E")
    assert synthesis.create("aws:s3/bucket:Bucket", "b", {}) == synthesis.create("aws:s3/bucket:Bucket", "b", {})


def test_aws_validation_is_reported() -> None:
    assert synthesis.check("aws:s3/bucket:Bucket", {"bucket": "Not_Valid"})
    assert synthesis.check("aws:dax/cluster:Cluster", {"clusterName": "a-name-much-longer-than-twenty"})
    assert synthesis.check("aws:s3/bucket:Bucket", {"bucket": "fine-name"}) == []


def test_mocks_answer_from_the_same_synthesis_as_the_provider() -> None:
    import pulumi

    mocks = SandboxMocks()
    args = pulumi.runtime.MockResourceArgs(typ="aws:sqs/queue:Queue", name="jobs", inputs={"fifoQueue": False})
    rid, outputs = mocks.new_resource(args)
    assert (rid, outputs) == synthesis.create("aws:sqs/queue:Queue", "jobs", {"fifoQueue": False})
    assert outputs["url"] == rid and outputs["arn"].endswith(f":{outputs['name']}")


@pytest.fixture
def provider(tmp_path: Path):
    env = {**os.environ, "SANDBOX_CLOUD_DIR": str(tmp_path / "cloud")}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield provider_pb2_grpc.ResourceProviderStub(channel), tmp_path / "cloud"
    channel.close()
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


def test_plugin_speaks_the_provider_protocol(provider) -> None:
    stub, cloud = provider
    info = stub.GetPluginInfo(empty_pb2.Empty())
    assert info.version == metadata.version("pulumi-aws")
    stub.Configure(provider_pb2.ConfigureRequest(variables={"aws:region": "eu-central-1"}))
    urn = "urn:pulumi:dev::serverless-cases::aws:s3/bucket:Bucket::files"
    checked = stub.Check(provider_pb2.CheckRequest(urn=urn, news=_struct({"forceDestroy": False}),
                                                   randomSeed=b"seed"))
    inputs = json_format.MessageToDict(checked.inputs)
    assert inputs["bucket"].startswith("files-")
    created = stub.Create(provider_pb2.CreateRequest(urn=urn, properties=checked.inputs))
    assert created.id == inputs["bucket"]
    assert json_format.MessageToDict(created.properties)["bucketRegionalDomainName"] == f"{created.id}.s3.eu-central-1.amazonaws.com"
    assert len(list(cloud.rglob("*.json"))) == 1
    read = stub.Read(provider_pb2.ReadRequest(urn=urn, id=created.id))
    assert read.id == created.id
    stub.Delete(provider_pb2.DeleteRequest(urn=urn, id=created.id))
    assert stub.Read(provider_pb2.ReadRequest(urn=urn, id=created.id)).id == ""
    identity = stub.Invoke(provider_pb2.InvokeRequest(tok="aws:index/getCallerIdentity:getCallerIdentity"))
    assert json_format.MessageToDict(getattr(identity, "return"))["accountId"] == synthesis.ACCOUNT_ID
    unknown = stub.Invoke(provider_pb2.InvokeRequest(tok="aws:index/getAmi:getAmi"))
    assert "does not model" in unknown.failures[0].reason


def test_a_provider_takes_every_operation_the_engine_sends_at_once_and_hears_its_cancel_while_they_last(
        tmp_path: Path) -> None:
    """40 operations at once (the engine sends up to RUN_PARALLELISM: 32 by default), every one
    held in flight: all 40 are under way together, and the engine's Cancel still gets through and
    lets them finish. The provider served 16 calls at a time: the 17th waited, and so did a Cancel
    sent while 16 were held, so a cancelled run never stopped."""
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "closed").write_text("0")  # every operation is held until the gate opens or a Cancel comes
    env = {**os.environ, "SANDBOX_CLOUD_DIR": str(tmp_path / "cloud"), "SANDBOX_GATE_DIR": str(gate)}
    proc = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{int(proc.stdout.readline())}")
    try:
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        stub.Configure(provider_pb2.ConfigureRequest(variables={"aws:region": "eu-central-1"}))
        urns = [f"urn:pulumi:dev::serverless-cases::aws:s3/bucket:Bucket::files-{i}" for i in range(40)]
        inputs = {urn: stub.Check(provider_pb2.CheckRequest(urn=urn, news=_struct({}), randomSeed=urn.encode())).inputs
                  for urn in urns}
        with ThreadPoolExecutor(max_workers=len(urns)) as pool:
            creates = [pool.submit(stub.Create, provider_pb2.CreateRequest(urn=urn, properties=inputs[urn]), timeout=120)
                       for urn in urns]
            held = gate / "held"
            assert until(lambda: held.exists() and len(list(held.iterdir())) == len(urns), timeout=30), \
                f"{len(list(held.iterdir())) if held.exists() else 0} of {len(urns)} operations under way at once"
            stub.Cancel(empty_pb2.Empty(), timeout=10)  # DEADLINE_EXCEEDED when no thread was free for it
            assert sorted(create.result().id for create in creates) == sorted(
                json_format.MessageToDict(inputs[urn])["bucket"] for urn in urns)
    finally:
        channel.close()
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_creates_racing_for_an_accounts_last_quota_place_get_it_once(tmp_path: Path) -> None:
    """Two providers (two runs of one account) create response headers policies at once with one
    place left: the count, the judgement and the record are one step under the account's lock,
    so exactly one gets it and the other is refused (TooManyResponseHeadersPolicies). A create
    waits while another holds the lock; before the lock both counted 0 and both were made."""
    policy = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
    cloud_dir = tmp_path / "cloud"
    env = {**os.environ, "SANDBOX_CLOUD_DIR": str(cloud_dir), "SANDBOX_QUOTAS": json.dumps({policy: 1})}
    procs, channels, stubs = [], [], []
    try:
        for _ in range(2):
            proc = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                    text=True)
            procs.append(proc)
            assert proc.stdout is not None
            channels.append(grpc.insecure_channel(f"127.0.0.1:{int(proc.stdout.readline())}"))
            stubs.append(provider_pb2_grpc.ResourceProviderStub(channels[-1]))
            stubs[-1].Configure(provider_pb2.ConfigureRequest(variables={"aws:region": "us-east-1"}))
        requests = []
        for i, stub in enumerate(stubs):
            urn = f"urn:pulumi:site-{i}::serverless-cases::{policy}::headers"
            checked = stub.Check(provider_pb2.CheckRequest(urn=urn, news=_struct({"securityHeadersConfig": {
                "contentTypeOptions": {"override": True}}}), randomSeed=urn.encode()))
            requests.append(provider_pb2.CreateRequest(urn=urn, properties=checked.inputs))
        account = SandboxCloud(cloud_dir, "us-east-1")
        with ThreadPoolExecutor(max_workers=2) as pool:
            with account.quota_lock():  # another run of the account is counting
                creates = [pool.submit(stub.Create, request, timeout=60) for stub, request in zip(stubs, requests, strict=True)]
                time.sleep(1.0)
                assert not any(create.done() for create in creates), "a create counted while the account was locked"
            outcomes = []
            for create in creates:
                try:
                    outcomes.append(create.result().id)
                except grpc.RpcError as exc:
                    outcomes.append(exc.details())
        made = [o for o in outcomes if "TooManyResponseHeadersPolicies" not in o]
        assert len(made) == 1 and account.count_in_account(policy) == 1, outcomes
    finally:
        for channel in channels:
            channel.close()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
            assert proc.stdout is not None
            proc.stdout.close()


def test_refresh_detects_drift_and_up_repairs_it(workspace: Workspace) -> None:
    workspace.new_stack("dev", "todo-app")
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "dev")
    table = next(r for r in workspace.cloud_records() if r.type == "aws:dynamodb/table:Table")
    path = next(p for p in (workspace.data_dir / "sandbox-cloud").rglob("*.json")
                if json.loads(p.read_text())["id"] == table.id)
    drifted = json.loads(path.read_text())
    for side in ("inputs", "outputs"):
        drifted[side]["pointInTimeRecovery"] = {"enabled": False}
    path.write_text(json.dumps(drifted))

    done = workspace.pulumi("refresh", "--yes", "--skip-preview", "--expect-no-changes", "--stack", "dev",
                            check=False)
    assert done.returncode != 0  # drift found
    workspace.pulumi("refresh", "--yes", "--skip-preview", "--stack", "dev")
    steps = workspace.preview_steps("dev")
    assert [s["op"] for s in steps if s["op"] != "same"] == ["update"]
    workspace.pulumi("up", "--yes", "--skip-preview", "--stack", "dev")
    assert json.loads(path.read_text())["outputs"]["pointInTimeRecovery"] == {"enabled": True}
    assert len(managed(workspace.resources("dev"))) == len(workspace.cloud_records())


def _plugin_command(plugin: str, address: str, toolchain: str) -> list[str]:
    return ([sys.executable, "-m", "sandbox", address] if plugin == "provider"
            else [f"{toolchain}/pulumi-language-python", address])


@pytest.mark.parametrize("plugin", ["provider", "language host"])
def test_plugins_exit_when_their_engine_stops_answering(plugin: str, pulumi_toolchain: str) -> None:
    """A plugin whose parent is not its engine still leaves once the engine's address is dead."""
    import socket

    engine = socket.socket()
    engine.bind(("127.0.0.1", 0))
    engine.listen()
    address = f"127.0.0.1:{engine.getsockname()[1]}"
    proc = subprocess.Popen(_plugin_command(plugin, address, pulumi_toolchain), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and int(proc.stdout.readline()) > 0  # serving
        assert proc.poll() is None
        engine.close()  # the engine dies without a word
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class _EngineAddress:
    """A listening address that stays up and counts the connections made to it."""

    def __init__(self) -> None:
        import socket

        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


# The engine's process, as far as its plugins can tell: it starts the plugin as its child (as the
# engine does), reports the plugin's pid and port, and waits to be killed.
_ENGINE_PROCESS = """
import subprocess, sys
plugin = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
print(plugin.pid, plugin.stdout.readline().strip(), flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("plugin", ["provider", "language host"])
def test_plugins_exit_when_their_engine_is_killed_and_do_not_poll_it_while_it_lives(
        plugin: str, pulumi_toolchain: str) -> None:
    """The engine's process SIGKILLed: its plugin leaves, though the engine's address still accepts
    (a plugin watches its parent's exit). While the engine lives, an idle plugin does not connect to
    it every second: each check was a connection the engine had to accept and set up."""
    address = _EngineAddress()
    engine = subprocess.Popen([sys.executable, "-c", _ENGINE_PROCESS,
                               *_plugin_command(plugin, address.address, pulumi_toolchain)],
                              cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert engine.stdout is not None and engine.stdin is not None
    pid, port = (int(field) for field in engine.stdout.readline().split())
    try:
        assert port > 0
        before = address.connections
        time.sleep(3)
        assert address.connections - before <= 1  # a check every second made 3
        engine.kill()
        engine.wait()
        assert until(lambda: not alive(pid), timeout=30), "the plugin outlived its engine"
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        engine.stdout.close()
        engine.stdin.close()
        address.listener.close()
