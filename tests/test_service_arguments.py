"""A stack's arguments as GET shows them are the ones its next run applies: a secret turned plain
or removed leaves the deployment, and a change that fails or is cancelled does not stick."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service_harness import Service, describe, wait_run

pytestmark = pytest.mark.engine


def _thumbnail_size(service: Service) -> str:
    """What the deployed thumbnail function is configured with (the sandbox's record of it)."""
    [function] = [r for r in service.cloud_records() if r.type == "aws:lambda/function:Function"
                  and "thumbnailer" in r.urn]
    return str(function.inputs["environment"]["variables"]["THUMBNAIL_SIZE"])


def _change(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = api.patch("/v1/stacks/pics", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_secret_edits_reach_the_deployment_and_failed_or_cancelled_changes_do_not_stick(service: Service) -> None:
    with service.client() as api:
        created = api.post("/v1/stacks", json={"name": "pics", "case": "blog",
                                               "arguments": {"sender_email": "pics@blog.example"},
                                               "secret_arguments": {"thumbnail_size": "64x64"}})
        assert wait_run(api, created.json()["id"])["status"] == "succeeded"
        assert _thumbnail_size(service) == "64x64"
        stack = api.get("/v1/stacks/pics").json()
        assert stack["arguments"]["thumbnail_size"] == stack["applied_arguments"]["thumbnail_size"] == "[secret]"

        # A secret argument turned plain: the plain value is deployed, not the old secret.
        assert wait_run(api, _change(api, {"arguments": {"thumbnail_size": "96x96"}})["id"])["status"] == "succeeded"
        assert _thumbnail_size(service) == "96x96"

        # A secret argument removed with null: the default is deployed.
        assert wait_run(api, _change(api, {"secret_arguments": {"thumbnail_size": "48x48"}})["id"])["status"] == \
            "succeeded"
        assert _thumbnail_size(service) == "48x48"
        assert wait_run(api, _change(api, {"arguments": {"thumbnail_size": None}})["id"])["status"] == "succeeded"
        assert _thumbnail_size(service) == "200x200"
        assert "thumbnail_size" not in api.get("/v1/stacks/pics").json()["arguments"]

        # A queued change that added a secret, cancelled: its name does not stay without a value.
        service.gate.close()
        running = _change(api, {"arguments": {"upload_url_expiry_seconds": 600}})
        service.gate.wait_held(stack="admin.pics")
        queued = _change(api, {"secret_arguments": {"thumbnail_size": "32x32"}})
        assert api.post(f"/v1/runs/{queued['id']}/cancel").json()["status"] == "cancelled"
        desired = api.get("/v1/stacks/pics").json()["arguments"]
        assert "thumbnail_size" not in desired and desired["upload_url_expiry_seconds"] == 600  # the running one's
        service.gate.open()
        assert wait_run(api, running["id"])["status"] == "succeeded"
        later = wait_run(api, _change(api, {"arguments": {"upload_url_expiry_seconds": 900}})["id"])
        assert later["status"] == "succeeded", describe(later)
        assert _thumbnail_size(service) == "200x200"

        # A change that fails (a mandatory policy stops it) is not applied by the next run.
        failed = wait_run(api, _change(api, {"arguments": {"deletion_protection": False}})["id"])
        assert failed["status"] == "failed" and failed["error"]["error"] == "PolicyViolation", describe(failed)
        stack = api.get("/v1/stacks/pics").json()
        assert "deletion_protection" not in stack["arguments"] and stack["arguments"] == stack["applied_arguments"]
        after = wait_run(api, _change(api, {"arguments": {"upload_url_expiry_seconds": 1200}})["id"])
        assert after["status"] == "succeeded", describe(after)
        assert api.get("/v1/stacks/pics").json()["applied_arguments"]["upload_url_expiry_seconds"] == 1200
