"""A pack an admin adds for a tenant (tests): one advisory policy that notes every bucket."""

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def _note_bucket(args, report_violation) -> None:
    if args.resource_type == "aws:s3/bucket:Bucket":
        report_violation("a bucket (noted by the tenant's own pack)")


PolicyPack(name="serverless-cases-tests-extra", policies=[ResourceValidationPolicy(
    name="tests-note-buckets", description="Notes every bucket.", enforcement_level=EnforcementLevel.ADVISORY,
    validate=_note_bucket)])
