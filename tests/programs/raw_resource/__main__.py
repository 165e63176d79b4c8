"""A test program that registers one AWS resource exactly as configured: the type token in
``serverless-cases:type`` and its wire-format inputs (JSON) in ``serverless-cases:inputs``.
It lets the engine tests show each sandbox rule refusing what AWS refuses."""

import json

import pulumi

config = pulumi.Config("serverless-cases")
resource = pulumi.CustomResource(config.require("type"), "subject", json.loads(config.require("inputs")))
pulumi.export("id", resource.id)
