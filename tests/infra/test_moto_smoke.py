"""Smoke test: the messaging, storage, data and IAM templates deployed on moto's CloudFormation,
then used by the application's own code.

moto's CloudFormation is a smoke test only: it accepts AWS::CloudFormation::Stack but does not
create the child stacks' resources or outputs, so each child template is deployed on its own
here (as main.yaml would wire them). It also skips AWS::CloudWatch::Alarm,
AWS::S3::BucketPolicy and AWS::SecretsManager::Secret, and ignores the bucket's public access
block, lifecycle and ownership settings and the tables' TTL and point-in-time recovery:
test_templates.py checks those on the templates, cfn-lint checks the schema.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import boto3
import pytest
from botocore.config import Config
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from messenger_widgets import provision
from messenger_widgets.attachments import Attachments
from messenger_widgets.protocol import MAX_SQS_MESSAGE_BYTES, WAIT_TIME_SECONDS
from messenger_widgets.transport import SqsTransport, dead_letter_queue_url

from .cfn import INFRA, resources, template

REGION = "us-east-1"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto.cloudformation.parsing")


@dataclass
class Stack:
    endpoint: str
    prefix: str
    outputs: dict[str, str]
    token_secret_arn: str

    def client(self, service: str) -> Any:
        config = Config(signature_version="s3v4") if service == "s3" else None
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, config=config)


def _deploy(cf: Any, name: str, template_name: str, parameters: dict[str, str]) -> dict[str, str]:
    cf.create_stack(
        StackName=name,
        TemplateBody=(INFRA / f"{template_name}.yaml").read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    cf.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    (stack,) = cf.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> Iterator[Stack]:
    prefix = f"smoke-{secrets.token_hex(3)}"
    cf = boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_endpoint)
    outputs: dict[str, str] = {}
    outputs |= _deploy(cf, f"{prefix}-messaging", "messaging", {"Prefix": prefix})
    outputs |= _deploy(cf, f"{prefix}-storage", "storage", {"Prefix": prefix})
    outputs |= _deploy(
        cf,
        f"{prefix}-data",
        "data",
        {"UsersTableName": f"{prefix}-users", "MessagesTableName": f"{prefix}-messages"},
    )
    # moto's CloudFormation skips AWS::SecretsManager::Secret: create what secrets.yaml
    # would, with the name it would have.
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint)
    secret_arn = sm.create_secret(
        Name=f"{prefix}/token-secret", SecretString=secrets.token_urlsafe(48)
    )["ARN"]
    iam_parameters = {
        "Prefix": prefix,
        "BucketName": outputs["BucketName"],
        "TokenSecretArn": secret_arn,
        **{
            k: outputs[k]
            for k in (
                "RequestQueueArn",
                "ResponseQueueArn",
                "DeadLetterQueueArn",
                "UsersTableArn",
                "MessagesTableArn",
            )
        },
    }
    outputs |= _deploy(cf, f"{prefix}-iam", "iam", iam_parameters)
    yield Stack(moto_endpoint, prefix, outputs, secret_arn)


# --- messaging --------------------------------------------------------------------------------
def _attributes(stack: Stack, output: str) -> dict[str, str]:
    sqs = stack.client("sqs")
    return sqs.get_queue_attributes(QueueUrl=stack.outputs[output], AttributeNames=["All"])[
        "Attributes"
    ]


def test_queues_exist_with_the_attributes_of_provision(stack: Stack) -> None:
    requests = _attributes(stack, "RequestQueueUrl")
    responses = _attributes(stack, "ResponseQueueUrl")
    dlq = _attributes(stack, "DeadLetterQueueUrl")
    assert requests["QueueArn"].endswith(f":{stack.prefix}-requests")
    assert dlq["QueueArn"].endswith(f":{stack.prefix}-requests-dlq")
    assert responses["QueueArn"].endswith(f":{stack.prefix}-responses")
    assert json.loads(requests["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": provision.MAX_RECEIVES_BEFORE_DLQ,
    }
    assert int(requests["MessageRetentionPeriod"]) == provision.REQUEST_RETENTION_SECONDS
    assert int(responses["MessageRetentionPeriod"]) == provision.RESPONSE_RETENTION_SECONDS
    assert int(dlq["MessageRetentionPeriod"]) == provision.DLQ_RETENTION_SECONDS
    worker_timeout = template("worker")["Parameters"]["TimeoutSeconds"]["Default"]
    assert int(requests["VisibilityTimeout"]) >= worker_timeout
    for queue in (requests, responses, dlq):
        assert int(queue["ReceiveMessageWaitTimeSeconds"]) == WAIT_TIME_SECONDS
        assert int(queue["MaximumMessageSize"]) == MAX_SQS_MESSAGE_BYTES
        assert queue["SqsManagedSseEnabled"] == "true"


def test_the_worker_finds_the_dlq_from_the_redrive_policy(stack: Stack) -> None:
    transport = SqsTransport(stack.client("sqs"))
    found = dead_letter_queue_url(transport, stack.outputs["RequestQueueUrl"])
    assert found is not None and found.endswith(f"/{stack.prefix}-requests-dlq")


def test_a_request_received_five_times_moves_to_the_dlq(stack: Stack) -> None:
    sqs = stack.client("sqs")
    requests, dlq = stack.outputs["RequestQueueUrl"], stack.outputs["DeadLetterQueueUrl"]
    sent = sqs.send_message(QueueUrl=requests, MessageBody="poison")["MessageId"]
    for _ in range(provision.MAX_RECEIVES_BEFORE_DLQ):
        (message,) = sqs.receive_message(QueueUrl=requests, WaitTimeSeconds=1)["Messages"]
        sqs.change_message_visibility(
            QueueUrl=requests, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert not sqs.receive_message(QueueUrl=requests, WaitTimeSeconds=0).get("Messages")
    (moved,) = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1)["Messages"]
    assert moved["MessageId"] == sent
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=moved["ReceiptHandle"])


# --- storage ----------------------------------------------------------------------------------
def test_bucket_is_encrypted_and_takes_attachments(stack: Stack) -> None:
    s3 = stack.client("s3")
    bucket = stack.outputs["BucketName"]
    assert bucket == f"{stack.prefix}-attachments-123456789012-{REGION}"  # moto's account
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    attachments = Attachments(s3, bucket, endpoint_url=stack.endpoint)
    body = attachments.upload("notes.txt", b"hello", "text/plain")
    assert body["key"].startswith("attachments/")
    assert attachments.head(body["key"]) == (5, "text/plain")


# --- data -------------------------------------------------------------------------------------
def _normalise(table: dict[str, Any]) -> dict[str, Any]:
    return {
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": sorted(
            table["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        ),
        "GlobalSecondaryIndexes": sorted(
            (
                {k: i[k] for k in ("IndexName", "KeySchema", "Projection")}
                for i in table["GlobalSecondaryIndexes"]
            ),
            key=lambda i: i["IndexName"],
        ),
    }


def test_tables_match_what_the_store_creates(stack: Stack) -> None:
    from messenger_widgets.store import dynamodb_schema as schema
    ddb = stack.client("dynamodb")
    users, messages = stack.outputs["UsersTableName"], stack.outputs["MessagesTableName"]
    assert (users, messages) == (f"{stack.prefix}-users", f"{stack.prefix}-messages")
    for definition in schema.table_definitions(users, messages):
        table = ddb.describe_table(TableName=definition["TableName"])["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert _normalise(table) == _normalise(dict(definition))


# --- IAM --------------------------------------------------------------------------------------
def test_roles_and_the_notebook_policy_exist_with_resolved_arns(stack: Stack) -> None:
    iam = stack.client("iam")
    role = stack.outputs["WorkerRoleArn"].rsplit("/", 1)[-1]
    document = iam.get_role_policy(RoleName=role, PolicyName="worker")["PolicyDocument"]
    text = json.dumps(document)
    assert f":{stack.prefix}-session-*" in text
    assert stack.token_secret_arn in text
    assert f"/aws/lambda/{stack.prefix}-worker:*" in text
    policy = iam.get_policy(PolicyArn=stack.outputs["ClientPolicyArn"])["Policy"]
    assert policy["Path"] == f"/{stack.prefix}/"
    for output in ("WebTaskRoleArn", "WebExecutionRoleArn"):
        iam.get_role(RoleName=stack.outputs[output].rsplit("/", 1)[-1])


# --- the worker Lambda, cold start to reply, with only its packaged dependencies --------------
def _lambda_modules() -> list[str]:
    """Top-level modules of infra/lambda-requirements.txt and their dependencies."""
    wanted = [
        line.split("#")[0].strip()
        for line in (INFRA / "lambda-requirements.txt").read_text().splitlines()
    ]
    seen: set[str] = set()
    stack = [w for w in wanted if w]
    while stack:
        requirement = Requirement(stack.pop())
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for dependency in metadata.requires(requirement.name) or []:
            parsed = Requirement(dependency)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                stack.append(dependency)
    modules = {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(canonicalize_name(d) in seen for d in dists)
    }
    return sorted(modules | {"messenger_widgets"})


LAMBDA_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    ALLOWED = set(json.loads(sys.argv[1]))
    BLOCKED = []

    class OnlyThePackage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in ALLOWED or top in sys.stdlib_module_names:
                return None
            BLOCKED.append(top)
            raise ModuleNotFoundError(f"No module named {name!r} in the Lambda", name=name)

    sys.meta_path.insert(0, OnlyThePackage())
    from messenger_widgets.worker.lambda_entry import handler

    results = [handler(event, None) for event in json.load(sys.stdin)]
    print(json.dumps({"results": results, "blocked": sorted(set(BLOCKED))}))
    """
)


def _resolve(value: Any, parameters: dict[str, str]) -> str:
    if isinstance(value, str | int):
        return str(value)
    if "Ref" in value:
        return parameters[value["Ref"]]
    text = value["Fn::Sub"]
    for name, replacement in parameters.items():
        text = text.replace("${" + name + "}", replacement)
    assert "${" not in text, text
    return text


def _lambda_environment(stack: Stack) -> dict[str, str]:
    """worker.yaml's environment, resolved for this stack, plus what Lambda itself sets."""
    worker = template("worker")
    parameters = {k: str(v["Default"]) for k, v in worker["Parameters"].items() if "Default" in v}
    parameters |= {
        "Prefix": stack.prefix,
        "RequestQueueUrl": stack.outputs["RequestQueueUrl"],
        "ResponseQueueUrl": stack.outputs["ResponseQueueUrl"],
        "BucketName": stack.outputs["BucketName"],
        "UsersTableName": stack.outputs["UsersTableName"],
        "MessagesTableName": stack.outputs["MessagesTableName"],
        "TokenSecretArn": stack.token_secret_arn,
    }
    function = resources("worker", "AWS::Lambda::Function")["Function"]["Properties"]
    env = {k: _resolve(v, parameters) for k, v in function["Environment"]["Variables"].items()}
    return env | {
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": stack.endpoint,  # the one addition: moto instead of AWS
        "PATH": "/usr/bin:/bin",
    }


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": a["StringValue"], "dataType": a["DataType"]}
            for name, a in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


@pytest.mark.timeout(120)
def test_the_worker_lambda_answers_a_register_on_the_deployed_queues(stack: Stack) -> None:
    sqs = stack.client("sqs")
    requests, responses = stack.outputs["RequestQueueUrl"], stack.outputs["ResponseQueueUrl"]
    body = {
        "fName": "Ada",
        "lName": "Lovelace",
        "email": f"ada@{stack.prefix}.example.com",
        "password": "correct horse battery",
    }
    sqs.send_message(
        QueueUrl=requests,
        MessageBody=json.dumps(body),
        MessageAttributes={
            "controller": {"DataType": "String", "StringValue": "user"},
            "method": {"DataType": "String", "StringValue": "register"},
        },
    )
    (message,) = sqs.receive_message(
        QueueUrl=requests,
        WaitTimeSeconds=1,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )["Messages"]
    events = [
        {"Records": [_record(message, stack.outputs["RequestQueueArn"])]},
        {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
    ]
    result = subprocess.run(
        [sys.executable, "-c", LAMBDA_SCRIPT, json.dumps(_lambda_modules())],
        input=json.dumps(events),
        env=_lambda_environment(stack),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["results"] == [{"batchItemFailures": []}, {"batchItemFailures": []}]
    print("modules the Lambda package would not have (optional imports):", out["blocked"])
    replies = sqs.receive_message(
        QueueUrl=responses, WaitTimeSeconds=2, MessageAttributeNames=["All"]
    ).get("Messages", [])
    mine = [
        r for r in replies if r["MessageAttributes"]["resTo"]["StringValue"] == message["MessageId"]
    ]
    assert mine, replies
    assert mine[0]["MessageAttributes"]["statusCode"]["StringValue"] == "200", mine[0]["Body"]
