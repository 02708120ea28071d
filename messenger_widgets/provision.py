"""Create the queues and the bucket, idempotently, on whatever endpoint boto3 is pointed at.

The same function provisions the embedded moto stack and a real AWS account (where the
CloudFormation templates in `infra/` are the production path).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from dotenv import set_key

from .errors import ConfigError, TransportError
from .protocol import MAX_SQS_MESSAGE_BYTES, WAIT_TIME_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

MAX_RECEIVES_BEFORE_DLQ = 5
REQUEST_VISIBILITY_SECONDS = 30
RESPONSE_RETENTION_SECONDS = 300  # replies nobody waits for any more die within minutes
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
REQUEST_RETENTION_SECONDS = 4 * 24 * 3600


@dataclass(frozen=True)
class Resources:
    request_queue_url: str
    response_queue_url: str
    dead_letter_queue_url: str
    bucket: str

    def env(self) -> dict[str, str]:
        return {
            "MESSENGER_REQUEST_QUEUE_URL": self.request_queue_url,
            "MESSENGER_RESPONSE_QUEUE_URL": self.response_queue_url,
            "MESSENGER_BUCKET": self.bucket,
        }


def provision(
    sqs: SQSClient,
    s3: S3Client,
    *,
    prefix: str = "messenger",
    bucket: str,
    region: str,
) -> Resources:
    try:
        dlq = _queue(
            sqs, f"{prefix}-requests-dlq", {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
        )
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        requests = _queue(
            sqs,
            f"{prefix}-requests",
            {
                "VisibilityTimeout": str(REQUEST_VISIBILITY_SECONDS),
                "ReceiveMessageWaitTimeSeconds": str(WAIT_TIME_SECONDS),
                "MessageRetentionPeriod": str(REQUEST_RETENTION_SECONDS),
                "MaximumMessageSize": str(MAX_SQS_MESSAGE_BYTES),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES_BEFORE_DLQ}
                ),
            },
        )
        responses = _queue(
            sqs,
            f"{prefix}-responses",
            {
                "ReceiveMessageWaitTimeSeconds": str(WAIT_TIME_SECONDS),
                "MessageRetentionPeriod": str(RESPONSE_RETENTION_SECONDS),
                "MaximumMessageSize": str(MAX_SQS_MESSAGE_BYTES),
            },
        )
        _bucket(s3, bucket, region)
    except (ClientError, BotoCoreError) as exc:
        raise TransportError(f"provisioning failed: {exc}") from exc
    return Resources(requests, responses, dlq, bucket)


def _queue(sqs: SQSClient, name: str, attributes: dict[str, str]) -> str:
    try:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    return url


def _bucket(s3: S3Client, name: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "abort-incomplete-uploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        },
    )


def new_token_secret() -> str:
    return secrets.token_urlsafe(48)


def write_env(path: Path, values: dict[str, str]) -> None:
    """Set keys in a `.env` file, keeping every other line; the file is private to its owner."""
    try:
        path.touch(mode=0o600, exist_ok=True)
        for key, value in values.items():
            set_key(str(path), key, value, quote_mode="never")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
