"""Case todo-app (MyTodoList): Cognito sign-in, per-user S3 folders reached with temporary
credentials from the identity pool, a cached REST API, Lambda, DynamoDB read through DAX."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

from components import defaults
from components.access_logs import CaseLogs
from components.args import CaseArgs, UserPoolTierArgs, WafArgs, check_args, component_args
from components.dax import DaxCluster, DaxClusterArgs, require_dax
from components.function import Function, FunctionArgs
from components.identity import IDENTITY_SUB, UserDirectory, UserDirectoryArgs
from components.packaging import lambda_layer
from components.rest_api import RestApi, RestApiArgs, Route
from components.storage import PrivateBucket, PrivateBucketArgs
from components.table import Table, TableArgs
from components.waf import CaseFirewalls

TOKEN = "serverless-cases:cases:TodoApp"
# The DAX client is published only as a pure-Python source package; its dependencies are
# wheels (botocore comes with the Lambda runtime).
DAX_CLIENT = "amazon-dax-client==2.1.0"
DAX_CLIENT_DEPENDENCIES = ("antlr4-python3-runtime==4.13.2", "six==1.17.0")
DESCRIPTION = (
    "MyTodoList: Cognito user pool and identity pool; temporary credentials scoped to the user's own "
    "S3 folder; API Gateway REST API with per-caller caching; Lambda; DynamoDB read through DAX."
)


@component_args
class TodoAppArgs(CaseArgs, UserPoolTierArgs, WafArgs):
    cache_ttl_seconds: int = defaults.API_CACHE_TTL_SECONDS
    """How long API Gateway caches GET responses (per caller); 0 turns the cache off."""
    dax_node_type: str = defaults.DAX_NODE_TYPE
    dax_replication_factor: int = defaults.DAX_REPLICATION_FACTOR
    vpc_id: str | None = None
    """An existing VPC for DAX and the function (with subnet_ids); default: a private VPC is created."""
    subnet_ids: list[str] = dataclasses.field(default_factory=list)
    mfa: str = "OPTIONAL"

    def problems(self) -> list[str]:
        problems = self.tag_problems()
        if not 0 <= self.cache_ttl_seconds <= 3600:
            problems.append(f"cache_ttl_seconds: {self.cache_ttl_seconds} is outside 0..3600")
        problems += DaxClusterArgs(table_arns=[], vpc_id=self.vpc_id, subnet_ids=self.subnet_ids,
                                   node_type=self.dax_node_type,
                                   replication_factor=self.dax_replication_factor).problems()
        problems += UserDirectoryArgs(mfa=self.mfa, tier=self.user_pool_tier).problems()
        return problems


def user_folder_statements(bucket_arn: str) -> list[dict]:
    """The authenticated role reaches only ``private/<its identity id>/`` in the files bucket."""
    own_prefix = f"private/{IDENTITY_SUB}/"
    return [
        defaults.allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], [f"{bucket_arn}/{own_prefix}*"],
                       sid="OwnFolderObjects"),
        defaults.allow(["s3:ListBucket"], [bucket_arn], sid="OwnFolderListing",
                       condition={"StringLike": {"s3:prefix": [own_prefix, f"{own_prefix}*"]}}),
    ]


class TodoApp(pulumi.ComponentResource):
    def __init__(self, name: str, args: TodoAppArgs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        args = args or TodoAppArgs()
        check_args(args, component=TOKEN)
        require_dax(TOKEN)
        child = pulumi.ResourceOptions(parent=self)

        self.users = UserDirectory(
            f"{name}-auth", UserDirectoryArgs(identity_pool=True, mfa=args.mfa, tier=args.user_pool_tier,
                                        deletion_protection=args.deletion_protection), opts=child)
        self.logs = CaseLogs(name, enabled=args.access_logs, parent=self, keep_data=args.deletion_protection)
        self.files = PrivateBucket(f"{name}-files", PrivateBucketArgs(
            access_logs=self.logs.sink(), force_destroy=not args.deletion_protection), opts=child)
        assert self.users.authenticated_role is not None and self.users.identity_pool is not None
        aws.iam.RolePolicy(
            f"{name}-own-folder", role=self.users.authenticated_role.id,
            policy=self.files.arn.apply(lambda arn: defaults.policy_document(user_folder_statements(arn))),
            opts=child)

        self.table = Table(f"{name}-todos", TableArgs(hash_key="userId", range_key="todoId",
                                                         deletion_protection=args.deletion_protection), opts=child)
        self.dax = DaxCluster(
            f"{name}-dax",
            DaxClusterArgs(table_arns=[self.table.arn], vpc_id=args.vpc_id, subnet_ids=args.subnet_ids,
                           node_type=args.dax_node_type, replication_factor=args.dax_replication_factor),
            opts=child)
        statements = pulumi.Output.all(self.table.statements(write=True), self.dax.statements()).apply(
            lambda parts: [*parts[0], *parts[1]])
        self.dax_client = lambda_layer(f"{name}-dax-client", DAX_CLIENT_DEPENDENCIES, source_only=[DAX_CLIENT],
                                       parent=self)
        self.api_function = Function(
            f"{name}-api",
            FunctionArgs(
                handler_module="todo_api",
                layers=[self.dax_client.arn],
                statements=statements,
                environment={"TABLE_NAME": self.table.name, "DAX_ENDPOINT": self.dax.endpoint},
                subnet_ids=self.dax.subnet_ids,
                security_group_ids=[self.dax.client_security_group.id],
            ),
            opts=child)
        routes = [Route(method, path, self.api_function) for method, path in (
            ("GET", "/todos"), ("POST", "/todos"), ("GET", "/todos/{todoId}"),
            ("PUT", "/todos/{todoId}"), ("DELETE", "/todos/{todoId}"))]
        self.api = RestApi(
            f"{name}-api",
            RestApiArgs(routes=routes, user_pool_arns=[self.users.user_pool.arn],
                        cache_ttl_seconds=args.cache_ttl_seconds,
                        firewall=CaseFirewalls(name, enabled=args.enable_waf, parent=self).for_api_stages()),
            opts=child)

        self.api_url = self.api.url
        self.user_pool_id = self.users.user_pool.id
        self.client_id = self.users.client.id
        self.identity_pool_id = self.users.identity_pool.id
        self.bucket_name = self.files.name
        self.table_name = self.table.name
        self.dax_endpoint = self.dax.endpoint
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output]:
        return {
            "api_url": self.api_url,
            "user_pool_id": self.user_pool_id,
            "client_id": self.client_id,
            "identity_pool_id": self.identity_pool_id,
            "bucket_name": self.bucket_name,
            "table_name": self.table_name,
            "dax_endpoint": self.dax_endpoint,
            **self.logs.outputs(),
        }
