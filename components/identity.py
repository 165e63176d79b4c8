"""UserDirectory: a Cognito user pool with an app client, and optionally an identity pool
for authenticated users only, whose role can be given a scoped policy."""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import check_args

TOKEN = "serverless-cases:identity:UserDirectory"
IDENTITY_SUB = "${cognito-identity.amazonaws.com:sub}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserDirectoryArgs:
    identity_pool: bool = False
    """Also create an identity pool (authenticated users only) and its authenticated role."""
    mfa: str = "OPTIONAL"
    """OFF, OPTIONAL or ON."""
    password_min_length: int = 12
    groups: tuple[str, ...] = ()
    """Cognito groups to create (membership is given by an administrator, never by the user)."""
    deletion_protection: bool = defaults.DELETION_PROTECTION
    """Refuse deletion of the pool and its users (turn off, update, then destroy)."""
    tier: str = defaults.USER_POOL_TIER
    """Cognito feature plan: ``PLUS`` (threat protection enforced; billed per monthly active
    user, no free tier), ``ESSENTIALS`` or ``LITE`` (no threat protection; free up to 10,000
    monthly active users)."""

    def problems(self) -> list[str]:
        problems = []
        if self.tier not in defaults.USER_POOL_TIERS:
            problems.append(f"user_pool_tier: {self.tier!r} is not one of {', '.join(defaults.USER_POOL_TIERS)}")
        if self.mfa not in ("OFF", "OPTIONAL", "ON"):
            problems.append(f"mfa: {self.mfa!r} is not OFF, OPTIONAL or ON")
        if not 8 <= self.password_min_length <= 99:
            problems.append(f"password_min_length: {self.password_min_length} is outside 8..99")
        return problems


class UserDirectory(pulumi.ComponentResource):
    user_pool: aws.cognito.UserPool
    groups: dict[str, aws.cognito.UserGroup]
    client: aws.cognito.UserPoolClient
    identity_pool: aws.cognito.IdentityPool | None
    authenticated_role: aws.iam.Role | None

    def __init__(self, name: str, args: UserDirectoryArgs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        args = args or UserDirectoryArgs()
        check_args(args, component=TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        if not args.deletion_protection:
            defaults.warn_weakened(name, "deletion_protection", False, True)
        if args.tier != defaults.USER_POOL_TIER:
            defaults.warn_weakened(name, "user_pool_tier", args.tier, defaults.USER_POOL_TIER)
        self.user_pool = aws.cognito.UserPool(
            f"{name}-users",
            auto_verified_attributes=["email"],
            username_attributes=["email"],
            mfa_configuration=args.mfa,
            software_token_mfa_configuration={"enabled": True} if args.mfa != "OFF" else None,
            password_policy={
                "minimum_length": args.password_min_length, "require_lowercase": True, "require_uppercase": True,
                "require_numbers": True, "require_symbols": True, "temporary_password_validity_days": 3,
            },
            user_pool_tier=args.tier,
            deletion_protection="ACTIVE" if args.deletion_protection else "INACTIVE",
            user_pool_add_ons=defaults.user_pool_add_ons(args.tier),
            account_recovery_setting={"recovery_mechanisms": [{"name": "verified_email", "priority": 1}]},
            admin_create_user_config={"allow_admin_create_user_only": False},
            opts=child,
        )
        self.client = aws.cognito.UserPoolClient(
            f"{name}-client",
            user_pool_id=self.user_pool.id,
            generate_secret=False,
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=60, id_token_validity=60, refresh_token_validity=30,
            token_validity_units={"access_token": "minutes", "id_token": "minutes", "refresh_token": "days"},
            opts=child,
        )
        self.groups = {
            group: aws.cognito.UserGroup(f"{name}-{group}", user_pool_id=self.user_pool.id, name=group,
                                         description=f"{group} (granted by an administrator)", opts=child)
            for group in args.groups}
        self.identity_pool = None
        self.authenticated_role = None
        if args.identity_pool:
            self.identity_pool = aws.cognito.IdentityPool(
                f"{name}-identities",
                identity_pool_name=name.replace("-", "_"),  # letters, digits, '_' and spaces only
                allow_unauthenticated_identities=False,
                allow_classic_flow=False,
                cognito_identity_providers=[{
                    "client_id": self.client.id,
                    "provider_name": self.user_pool.endpoint,
                    "server_side_token_check": True,
                }],
                opts=child,
            )
            self.authenticated_role = aws.iam.Role(
                f"{name}-authenticated",
                assume_role_policy=self.identity_pool.id.apply(authenticated_trust_policy),
                opts=child,
            )
            aws.cognito.IdentityPoolRoleAttachment(
                f"{name}-roles", identity_pool_id=self.identity_pool.id,
                roles={"authenticated": self.authenticated_role.arn}, opts=child)
        self.register_outputs({"user_pool_id": self.user_pool.id, "client_id": self.client.id})


def authenticated_trust_policy(identity_pool_id: str) -> str:
    """Only identities of this pool, and only authenticated ones, may assume the role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool_id},
                "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
            },
        }],
    }, sort_keys=True)
