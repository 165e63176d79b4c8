"""Case blog under Pulumi mocks: one test per guarantee."""

from __future__ import annotations

import fnmatch
import json

import pytest

from components import get_case
from sandbox.synthesis import ACCOUNT_ID
from tests.mocks import Recorded, as_list, build, statements


@pytest.fixture(scope="module")
def blog() -> Recorded:
    return build("blog")


@pytest.fixture(scope="module")
def fanout() -> Recorded:
    return build("blog", {"fanout_topic": True, "fanout_queue": True})


def test_content_bucket_allows_only_this_distribution(blog: Recorded) -> None:
    distribution = blog.one("aws:cloudfront/distribution:Distribution")
    content = blog.named("blog-site-content", "aws:s3/bucket:Bucket")
    policy = next(p for p in blog.of_type("aws:s3/bucketPolicy:BucketPolicy") if p.inputs["bucket"] == content.id)
    (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == f"{content.outputs['arn']}/*"
    assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution.outputs["arn"]}}


def test_cdn_reaches_bucket_through_origin_access_control(blog: Recorded) -> None:
    distribution = blog.one("aws:cloudfront/distribution:Distribution")
    oac = blog.one("aws:cloudfront/originAccessControl:OriginAccessControl")
    (origin,) = distribution.inputs["origins"]
    assert origin["originAccessControlId"] == oac.id
    assert oac.inputs["signingBehavior"] == "always" and oac.inputs["signingProtocol"] == "sigv4"
    assert not blog.of_type("aws:cloudfront/originAccessIdentity:OriginAccessIdentity")


def test_cdn_redirects_to_https_with_security_headers_and_compression(blog: Recorded) -> None:
    distribution = blog.one("aws:cloudfront/distribution:Distribution")
    behaviour = distribution.inputs["defaultCacheBehavior"]
    assert behaviour["viewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["compress"] is True
    headers = blog.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    assert behaviour["responseHeadersPolicyId"] == headers.id
    security = headers.inputs["securityHeadersConfig"]
    assert security["strictTransportSecurity"]["accessControlMaxAgeSec"] >= 31_536_000
    assert security["contentTypeOptions"]["override"] is True
    assert security["frameOptions"]["frameOption"] == "DENY"



CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000000"


def test_a_custom_domain_gets_tls_1_2_with_sni() -> None:
    blog = build("blog", {"domain_names": ["blog.example.com"], "certificate_arn": CERTIFICATE})
    distribution = blog.one("aws:cloudfront/distribution:Distribution")
    assert distribution.inputs["aliases"] == ["blog.example.com"]
    assert distribution.inputs["viewerCertificate"] == {
        "acmCertificateArn": CERTIFICATE, "sslSupportMethod": "sni-only", "minimumProtocolVersion": "TLSv1.2_2021"}


def test_the_default_certificate_states_the_tls_it_really_serves() -> None:
    """CloudFront's *.cloudfront.net certificate accepts TLSv1 whatever is asked: say so."""
    distribution = build("blog").one("aws:cloudfront/distribution:Distribution")
    assert distribution.inputs["viewerCertificate"] == {"cloudfrontDefaultCertificate": True,
                                                         "minimumProtocolVersion": "TLSv1"}


def test_origin_access_identity_is_available_when_asked_for() -> None:
    legacy = build("blog", {"origin_access": "identity"})
    oai = legacy.one("aws:cloudfront/originAccessIdentity:OriginAccessIdentity")
    (origin,) = legacy.one("aws:cloudfront/distribution:Distribution").inputs["origins"]
    assert origin["s3OriginConfig"]["originAccessIdentity"] == oai.outputs["cloudfrontAccessIdentityPath"]
    assert not legacy.of_type("aws:cloudfront/originAccessControl:OriginAccessControl")


def test_users_table_is_global_with_point_in_time_recovery_everywhere(blog: Recorded) -> None:
    table = blog.one("aws:dynamodb/table:Table")
    assert table.inputs["streamEnabled"] is True
    assert table.inputs["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table.inputs["pointInTimeRecovery"]["enabled"] is True
    assert [r["regionName"] for r in table.inputs["replicas"]] == ["us-west-2"]
    assert all(r["pointInTimeRecovery"] is True for r in table.inputs["replicas"])
    two = build("blog", {"replica_regions": ["eu-west-1", "ap-southeast-2"]})
    assert [r["regionName"] for r in two.one("aws:dynamodb/table:Table").inputs["replicas"]] == \
        ["eu-west-1", "ap-southeast-2"]


def test_stream_consumer_has_on_failure_destination(blog: Recorded) -> None:
    mapping = blog.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    failures = blog.named("blog-new-users-failures", "aws:sqs/queue:Queue")
    assert mapping.inputs["destinationConfig"]["onFailure"]["destinationArn"] == failures.outputs["arn"]
    assert mapping.inputs["eventSourceArn"] == blog.one("aws:dynamodb/table:Table").outputs["streamArn"]


def test_stream_consumer_sees_only_inserts_with_bounded_retries(blog: Recorded) -> None:
    mapping = blog.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    (pattern,) = mapping.inputs["filterCriteria"]["filters"]
    assert json.loads(pattern["pattern"]) == {"eventName": ["INSERT"]}
    assert mapping.inputs["bisectBatchOnFunctionError"] is True
    assert 0 < mapping.inputs["maximumRetryAttempts"] <= 10
    assert 0 < mapping.inputs["maximumRecordAgeInSeconds"] <= 86_400
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]


def test_welcome_function_may_send_only_from_the_sender_identity(blog: Recorded) -> None:
    identity = blog.one("aws:sesv2/emailIdentity:EmailIdentity")
    assert identity.inputs["emailIdentity"] == "welcome@myblog.example"
    send = next(s for s in statements(blog.named("blog-welcome-policy")) if s["Sid"] == "SendFromSenderOnly")
    assert send["Action"] == ["ses:SendEmail"] and send["Resource"] == [identity.outputs["arn"]]
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": "welcome@myblog.example"}}


def test_a_blog_can_send_through_an_identity_the_account_already_has() -> None:
    """SES keeps one identity per address or domain in an account and region: a second blog
    with the same sender could not make it again (AlreadyExistsException). With
    ``sender_identity: existing`` the stack makes none and may send from the address through
    its own identity or its domain's, and from that address only."""
    existing = build("blog", {"sender_identity": "existing"})
    assert not existing.of_type("aws:sesv2/emailIdentity:EmailIdentity")
    send = next(s for s in statements(existing.named("blog-welcome-policy")) if s["Sid"] == "SendFromSenderOnly")
    assert send["Resource"] == [f"arn:aws:ses:us-east-1:{ACCOUNT_ID}:identity/welcome@myblog.example",
                                f"arn:aws:ses:us-east-1:{ACCOUNT_ID}:identity/myblog.example"]
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": "welcome@myblog.example"}}
    assert "sender_identity" in existing.output_names
    with pytest.raises(Exception, match="sender_identity: 'borrowed' is not one of create, existing"):
        get_case("blog").parse_args({**get_case("blog").example_args, "sender_identity": "borrowed"})


def test_thumbnails_are_written_to_another_bucket_so_never_retrigger(blog: Recorded) -> None:
    uploads = blog.named("blog-uploads", "aws:s3/bucket:Bucket")
    thumbnails = blog.named("blog-thumbnails", "aws:s3/bucket:Bucket")
    (notification,) = blog.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["bucket"] == uploads.id
    (target,) = notification.inputs["lambdaFunctions"]
    assert target["filterPrefix"] == "uploads/" and target["events"] == ["s3:ObjectCreated:*"]
    granted = statements(blog.named("blog-thumbnailer-policy"))
    writes = [s for s in granted if "s3:PutObject" in as_list(s["Action"])]
    assert [w["Resource"] for w in writes] == [[f"{thumbnails.outputs['arn']}/thumbnails/*"]]
    fn = blog.named("blog-thumbnailer", "aws:lambda/function:Function")
    assert fn.inputs["environment"]["variables"]["THUMBNAIL_BUCKET"] == thumbnails.id


def test_thumbnailer_is_asynchronous_with_dead_letters_and_bounded_retries(blog: Recorded) -> None:
    fn = blog.named("blog-thumbnailer", "aws:lambda/function:Function")
    dlq = blog.named("blog-thumbnailer-dlq", "aws:sqs/queue:Queue")
    assert fn.inputs["deadLetterConfig"]["targetArn"] == dlq.outputs["arn"]
    config = blog.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert config.inputs["maximumRetryAttempts"] <= 2
    permission = next(p for p in blog.of_type("aws:lambda/permission:Permission")
                      if p.inputs["principal"] == "s3.amazonaws.com")
    assert permission.inputs["sourceArn"] == blog.named("blog-uploads", "aws:s3/bucket:Bucket").outputs["arn"]
    assert permission.inputs["sourceAccount"] == ACCOUNT_ID


def test_thumbnail_dependencies_ship_as_a_lambda_platform_layer(blog: Recorded) -> None:
    layer = blog.one("aws:lambda/layerVersion:LayerVersion")
    assert layer.inputs["compatibleRuntimes"] == ["python3.12"]
    fn = blog.named("blog-thumbnailer", "aws:lambda/function:Function")
    assert fn.inputs["layers"] == [layer.outputs["arn"]]


def test_upload_api_may_only_put_under_uploads(blog: Recorded) -> None:
    uploads = blog.named("blog-uploads", "aws:s3/bucket:Bucket")
    (put,) = [s for s in statements(blog.named("blog-presign-policy")) if s.get("Sid") == "PutUploadsOnly"]
    assert put["Action"] == ["s3:PutObject"] and put["Resource"] == [f"{uploads.outputs['arn']}/uploads/*"]
    methods = blog.of_type("aws:apigateway/method:Method")
    assert [m.inputs["authorization"] for m in methods] == ["COGNITO_USER_POOLS"]
    env = blog.named("blog-presign", "aws:lambda/function:Function").inputs["environment"]["variables"]
    assert env["URL_EXPIRY_SECONDS"] == "300" and env["USE_ACCELERATE"] == "false"


def test_transfer_acceleration_is_optional() -> None:
    accelerated = build("blog", {"transfer_acceleration": True})
    config = accelerated.one("aws:s3/bucketAccelerateConfiguration:BucketAccelerateConfiguration")
    assert config.inputs["status"] == "Enabled"
    env = accelerated.named("blog-presign", "aws:lambda/function:Function").inputs["environment"]["variables"]
    assert env["USE_ACCELERATE"] == "true"


def test_fanout_topic_admits_only_this_bucket_of_this_account(fanout: Recorded) -> None:
    uploads = fanout.named("blog-uploads", "aws:s3/bucket:Bucket")
    topic = fanout.one("aws:sns/topic:Topic")
    (publish,) = [s for s in statements(fanout.one("aws:sns/topicPolicy:TopicPolicy")) if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "s3.amazonaws.com"}
    assert publish["Resource"] == [topic.outputs["arn"]]
    assert publish["Condition"]["ArnEquals"] == {"aws:SourceArn": uploads.outputs["arn"]}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    (notification,) = fanout.of_type("aws:s3/bucketNotification:BucketNotification")
    assert [t["topicArn"] for t in notification.inputs["topics"]] == [topic.outputs["arn"]]
    assert "lambdaFunctions" not in notification.inputs


def test_fanout_queue_admits_only_the_topic_of_that_bucket(fanout: Recorded) -> None:
    queue = fanout.named("blog-upload-events-queue", "aws:sqs/queue:Queue")
    topic = fanout.one("aws:sns/topic:Topic")
    policy = next(p for p in fanout.of_type("aws:sqs/queuePolicy:QueuePolicy") if p.inputs["queueUrl"] == queue.id)
    (send,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert send["Principal"] == {"Service": "sns.amazonaws.com"}
    assert send["Condition"]["ArnEquals"] == {"aws:SourceArn": topic.outputs["arn"]}
    protocols = sorted(s.inputs["protocol"] for s in fanout.of_type("aws:sns/topicSubscription:TopicSubscription"))
    assert protocols == ["lambda", "sqs"]


def test_fanout_topic_and_queue_use_the_stacks_own_key_that_admits_s3_and_the_topic(fanout: Recorded) -> None:
    """AWS managed keys cannot admit S3: S3 would refuse to validate the topic as a destination."""
    key = fanout.one("aws:kms/key:Key")
    uploads = fanout.named("blog-uploads", "aws:s3/bucket:Bucket")
    assert key.inputs["enableKeyRotation"] is True
    assert fanout.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert fanout.named("blog-upload-events-queue", "aws:sqs/queue:Queue").inputs["kmsMasterKeyId"] == key.outputs["arn"]
    uses = {s["Sid"]: s for s in statements(key) if s["Principal"].get("Service")}
    assert uses["OnlyThisBucketsEvents"]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert uses["OnlyThisBucketsEvents"]["Condition"]["ArnLike"] == {"aws:SourceArn": uploads.outputs["arn"]}
    assert uses["OnlyTheFanoutTopic"]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert fnmatch.fnmatchcase(fanout.one("aws:sns/topic:Topic").outputs["arn"],
                               uses["OnlyTheFanoutTopic"]["Condition"]["ArnLike"]["aws:SourceArn"])


def test_outputs_include_topic_and_queue_only_when_enabled(blog: Recorded, fanout: Recorded) -> None:
    declared = set(get_case("blog").outputs)
    assert set(blog.output_names) == declared
    assert set(fanout.output_names) == declared | {"topic_arn", "queue_arn"}


def test_dax_bills_only_when_asked_for() -> None:
    """Nothing of the blog reads through DAX: an always-on cluster would cost money for nothing."""
    assert build("blog").of_type("aws:dax/cluster:Cluster") == []
    cluster = build("blog", {"enable_dax": True}).one("aws:dax/cluster:Cluster")
    assert cluster.inputs["replicationFactor"] == 3 and cluster.inputs["serverSideEncryption"] == {"enabled": True}


def test_only_the_authors_group_may_ask_for_upload_urls(blog: Recorded) -> None:
    (group,) = blog.of_type("aws:cognito/userGroup:UserGroup")
    assert group.inputs["name"] == "authors"
    presign = blog.named("blog-presign", "aws:lambda/function:Function")
    assert presign.inputs["environment"]["variables"]["AUTHOR_GROUP"] == "authors"
