"""What a run's worker is told: the job (:class:`service.engine.Job`, as JSON on its stdin).

A job carries everything the run needs, read from the database at its start, so that any node can
run it: the case and its arguments, the secret values (opened from their seal only now), the
secret names the stack keeps, the stack's settings file, the tenant's AWS role and policy packs,
and the engine's environment (target, state backend, secrets provider, plugins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from programs import backend, targets
from service import identities, policy, workers
from service.db import AppliedArguments, Run, StackSettings
from service.settings import Settings


def describe(session: Any, settings: Settings, run: Run, secrets: dict[str, Any], *, toolchain_bin: Path,
             plugin_env: dict[str, str], recover_first: bool) -> dict[str, Any]:
    """The job of ``run`` (whose secret argument values are ``secrets``); ``plugin_env`` is how its
    engine finds this node's plugin preloaders; ``recover_first`` when an earlier execution of the
    run ended with its node."""
    identity = identities.for_target(session, run.tenant_id, run.params["target"])
    applied = session.get(AppliedArguments, run.pulumi_stack)
    stored = session.get(StackSettings, run.pulumi_stack)
    packs, configs = policy.job_packs(policy.for_tenant(session, run.tenant_id),
                                      settings.workspaces_dir / run.pulumi_stack / ".policy")
    env = targets.engine_env(run.params["target"], workers.base_env(), str(toolchain_bin))
    env.update(settings.pulumi_secrets_env())
    env.update(backend.compression_env(settings.state_compression))
    env.update({"PULUMI_BACKEND_URL": settings.backend,
                "SANDBOX_CLOUD_DIR": str(settings.sandbox_cloud_dir),
                "SANDBOX_LATENCY_MS": str(settings.sandbox_latency_ms)})
    if settings.sandbox_quotas:
        env["SANDBOX_QUOTAS"] = settings.sandbox_quotas
    if settings.sandbox_gate_dir is not None:
        env["SANDBOX_GATE_DIR"] = str(settings.sandbox_gate_dir)
    env.update(plugin_env)
    return {
        "run_id": run.id, "kind": run.kind, "pulumi_stack": run.pulumi_stack, "case": run.params["case"],
        "target": run.params["target"], "args": run.params.get("args", {}), "secret_args": secrets,
        "workspace_dir": str(settings.workspaces_dir / run.pulumi_stack), "env": env,
        "toolchain_bin": str(toolchain_bin), "secrets_provider": settings.secrets_provider,
        "secret_arg_names": list(run.params.get("secret_arg_names", [])),
        "kept_secret_names": list(applied.secret_arg_names) if applied is not None else [],
        "unprotect": bool(run.params.get("delete_data")),
        "assume_roles": identity.assume_roles(run.tenant_id),
        "policy_packs": packs, "policy_pack_configs": configs,
        "stack_settings": stored.text if stored is not None else None,
        "recover_first": recover_first, "parallel": settings.run_parallelism,
    }
