"""boto3 clients built from `Settings`, only when a process asks for them (never at import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from .config import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# Long polls wait 20 s: the read timeout must outlast them.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    read_timeout=40,
    connect_timeout=5,
    max_pool_connections=20,
    signature_version=None,
)
S3_CONFIG = CLIENT_CONFIG.merge(Config(signature_version="s3v4"))


@dataclass(frozen=True)
class AwsClients:
    sqs: SQSClient
    s3: S3Client

    def dynamodb(self, settings: Settings) -> DynamoDBClient:
        return _session(settings).client("dynamodb", **_endpoint(settings), config=CLIENT_CONFIG)


def _session(settings: Settings) -> boto3.Session:
    kwargs: dict[str, Any] = {"region_name": settings.region or None}
    if settings.access_key_id:
        kwargs["aws_access_key_id"] = settings.access_key_id
        kwargs["aws_secret_access_key"] = settings.secret_access_key
    return boto3.Session(**kwargs)


def _endpoint(settings: Settings) -> dict[str, Any]:
    return {"endpoint_url": settings.endpoint_url} if settings.endpoint_url else {}


def make_clients(settings: Settings) -> AwsClients:
    session = _session(settings)
    return AwsClients(
        sqs=session.client("sqs", **_endpoint(settings), config=CLIENT_CONFIG),
        s3=session.client("s3", **_endpoint(settings), config=S3_CONFIG),
    )
