"""Shared fixtures: a real moto server over HTTP, and boto3 clients pointed at it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the test session, on a free loopback port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _dummy_aws_credentials() -> None:
    """Never let a test reach a real account: dummy credentials and a fixed region."""
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def sqs(moto_endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture
def s3(moto_endpoint: str):  # type: ignore[no-untyped-def]
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        config=Config(signature_version="s3v4"),
    )
