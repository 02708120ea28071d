"""Static checks of the CloudFormation templates: cfn-lint, portability, the wiring of the
nested stacks, and the properties the issue asks for (checked on the template because moto's
CloudFormation ignores many of them)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from messenger_widgets import provision
from messenger_widgets.config import SETTINGS
from messenger_widgets.protocol import MAX_SQS_MESSAGE_BYTES, WAIT_TIME_SECONDS

from .cfn import APP_TEMPLATES, INFRA, TEMPLATE_NAMES, as_list, resources, template


def _cfn_lint() -> str:
    beside = Path(sys.executable).with_name("cfn-lint")
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if not found:
        pytest.fail('cfn-lint is not installed: pip install -e ".[test]"')
    return found


def test_every_expected_template_exists() -> None:
    expected = {f"{n}.yaml" for n in (*APP_TEMPLATES, "pipeline")}
    assert expected <= set(TEMPLATE_NAMES)


def test_cfn_lint_passes_on_every_template() -> None:
    result = subprocess.run(
        [_cfn_lint(), *(str(INFRA / n) for n in TEMPLATE_NAMES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- portability ------------------------------------------------------------------------------
REGION = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov)-[a-z]+-\d\b")
ACCOUNT_ID = re.compile(r"(?<![\d.])\d{12}(?![\d.])")
AMI = re.compile(r"\bami-[0-9a-f]{8,17}\b")


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_no_account_id_ami_or_region_is_hard_coded(name: str) -> None:
    text = (INFRA / name).read_text()
    assert not ACCOUNT_ID.findall(text), "use ${AWS::AccountId}"
    assert not AMI.findall(text), "take AMIs from parameters"
    assert not REGION.findall(text), "use ${AWS::Region}"
    for match in re.finditer(r"arn:aws[a-z-]*:", text):
        line = text[: match.start()].rsplit("\n", 1)[-1]
        assert "AllowedPattern" in line, "use arn:${AWS::Partition}:"


def test_the_patterns_do_catch_hard_coded_values() -> None:
    text = "arn:aws:sqs:us-east-1:123456789012:q ami-0abcdef1234567890 eu-west-2"
    assert ACCOUNT_ID.findall(text) and AMI.findall(text) and len(REGION.findall(text)) == 2


# --- main.yaml: nested stacks -----------------------------------------------------------------
def _nested() -> dict[str, dict]:
    return resources("main", "AWS::CloudFormation::Stack")


def test_main_nests_one_stack_per_concern() -> None:
    urls = {r["Properties"]["TemplateURL"] for r in _nested().values()}
    assert urls == {f"{n}.yaml" for n in APP_TEMPLATES if n != "main"}


@pytest.mark.parametrize("logical_id", sorted(_nested()))
def test_nested_stack_parameters_match_the_child(logical_id: str) -> None:
    stack = _nested()[logical_id]["Properties"]
    child = template(stack["TemplateURL"])["Parameters"]
    given = set(stack.get("Parameters", {}))
    assert given <= set(child), f"unknown parameters {given - set(child)}"
    required = {k for k, v in child.items() if "Default" not in v}
    assert required <= given, f"missing parameters {required - given}"


def test_every_nested_output_main_reads_exists() -> None:
    stacks = _nested()
    text = (INFRA / "main.yaml").read_text()
    for logical_id, output in re.findall(r"!GetAtt (\w+)\.Outputs\.(\w+)", text):
        outputs = template(stacks[logical_id]["Properties"]["TemplateURL"])["Outputs"]
        assert output in outputs, f"{logical_id} has no output {output}"


def test_main_outputs_what_users_and_the_integrator_need() -> None:
    outputs = template("main")["Outputs"]
    for name in (
        "RequestQueueUrl",
        "ResponseQueueUrl",
        "BucketName",
        "UsersTableName",
        "MessagesTableName",
        "WebUrl",
        "NotebookUserPolicyArn",
        "Region",
    ):
        assert name in outputs


# --- messaging --------------------------------------------------------------------------------
def test_queues_mirror_provision() -> None:
    queues = {k: v["Properties"] for k, v in resources("messaging", "AWS::SQS::Queue").items()}
    dlq, requests, responses = (
        queues["DeadLetterQueue"],
        queues["RequestQueue"],
        queues["ResponseQueue"],
    )
    assert dlq["QueueName"] == {"Fn::Sub": "${Prefix}-requests-dlq"}
    assert requests["QueueName"] == {"Fn::Sub": "${Prefix}-requests"}
    assert responses["QueueName"] == {"Fn::Sub": "${Prefix}-responses"}
    assert dlq["MessageRetentionPeriod"] == provision.DLQ_RETENTION_SECONDS
    assert requests["MessageRetentionPeriod"] == provision.REQUEST_RETENTION_SECONDS
    assert responses["MessageRetentionPeriod"] == provision.RESPONSE_RETENTION_SECONDS == 300
    assert requests["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": provision.MAX_RECEIVES_BEFORE_DLQ,
    }
    for queue in queues.values():
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["MaximumMessageSize"] == MAX_SQS_MESSAGE_BYTES == 262144
        assert queue["ReceiveMessageWaitTimeSeconds"] == WAIT_TIME_SECONDS == 20


def test_request_visibility_outlasts_the_worker_timeout() -> None:
    visibility = template("messaging")["Parameters"]["RequestVisibilityTimeout"]
    timeout = template("worker")["Parameters"]["TimeoutSeconds"]
    main = template("main")["Parameters"]
    assert visibility["Default"] >= 6 * timeout["Default"]
    assert main["RequestVisibilityTimeout"]["Default"] >= 6 * main["WorkerTimeout"]["Default"]


def test_alarms_on_dlq_depth_and_oldest_request() -> None:
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources("messaging", "AWS::CloudWatch::Alarm").values()
    }
    depth = alarms["ApproximateNumberOfMessagesVisible"]
    assert depth["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
    assert depth["Threshold"] == 0 and depth["ComparisonOperator"] == "GreaterThanThreshold"
    age = alarms["ApproximateAgeOfOldestMessage"]
    assert age["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["RequestQueue", "QueueName"]}
    for alarm in alarms.values():
        assert alarm["AlarmActions"], "alarms notify the SNS topic"


# --- storage ----------------------------------------------------------------------------------
def test_bucket_is_private_encrypted_and_tls_only() -> None:
    bucket = resources("storage", "AWS::S3::Bucket")["AttachmentsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "CorsConfiguration" not in bucket, "the kernel fetches bytes; presigned GETs need none"
    (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["Status"] == "Enabled" and "AbortIncompleteMultipartUpload" in lifecycle
    (policy,) = resources("storage", "AWS::S3::BucketPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(deny["Resource"]) == 2  # the bucket and its objects


# --- data -------------------------------------------------------------------------------------
def _cfn_table(props: dict) -> dict:
    """A CloudFormation table in CreateTable's shape, to compare with table_definitions."""
    indexes = []
    for index in props["GlobalSecondaryIndexes"]:
        projection = dict(index["Projection"])
        indexes.append(
            {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": projection,
            }
        )
    return {
        "BillingMode": props["BillingMode"],
        "AttributeDefinitions": sorted(
            props["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        ),
        "KeySchema": props["KeySchema"],
        "GlobalSecondaryIndexes": sorted(indexes, key=lambda i: i["IndexName"]),
    }


def test_tables_mirror_the_dynamodb_store_schema() -> None:
    from messenger_widgets.store import dynamodb_schema as schema
    tables = resources("data", "AWS::DynamoDB::Table")
    names = {"UsersTable": "U", "MessagesTable": "M"}
    expected = {d["TableName"]: d for d in schema.table_definitions("U", "M")}
    for logical_id, short in names.items():
        props = tables[logical_id]["Properties"]
        want = dict(expected[short])
        want.pop("TableName")
        want["AttributeDefinitions"] = sorted(
            want["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        )
        want["GlobalSecondaryIndexes"] = sorted(
            want["GlobalSecondaryIndexes"], key=lambda i: i["IndexName"]
        )
        assert _cfn_table(props) == want, logical_id
        assert props["TimeToLiveSpecification"] == {
            "AttributeName": schema.TTL_ATTRIBUTE,
            "Enabled": True,
        }


def test_tables_are_on_demand_recoverable_and_encrypted() -> None:
    for props in (t["Properties"] for t in resources("data", "AWS::DynamoDB::Table").values()):
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
    stacks = resources("main", "AWS::CloudFormation::Stack").values()
    (data,) = [s for s in stacks if s["Properties"]["TemplateURL"] == "data.yaml"]
    params = data["Properties"]["Parameters"]
    assert params["UsersTableName"] == {"Fn::Sub": "${Prefix}-users"}
    assert params["MessagesTableName"] == {"Fn::Sub": "${Prefix}-messages"}


# --- secrets ----------------------------------------------------------------------------------
def test_token_secret_is_generated_never_written() -> None:
    (secret,) = resources("secrets", "AWS::SecretsManager::Secret").values()
    props = secret["Properties"]
    assert "SecretString" not in props
    assert props["GenerateSecretString"]["PasswordLength"] >= 32
    for name in TEMPLATE_NAMES:
        text = (INFRA / name).read_text()
        assert not re.search(r"(?<!Generate)SecretString\s*:", text), name
        assert not re.search(r"MESSENGER_TOKEN_SECRET\s*:", text), name


# --- worker -----------------------------------------------------------------------------------
def test_worker_function_and_event_source() -> None:
    fn = resources("worker", "AWS::Lambda::Function")["Function"]["Properties"]
    assert fn["Handler"] == "messenger_widgets.worker.lambda_entry.handler"
    runtime = template("worker")["Parameters"]["Runtime"]
    assert set(runtime["AllowedValues"]) <= {"python3.11", "python3.12"}
    assert fn["Code"] == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}
    assert "ReservedConcurrentExecutions" in fn
    (mapping,) = resources("worker", "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    window = template("worker")["Parameters"]["BatchingWindowSeconds"]
    assert window["Default"] <= 1 and window["MaxValue"] <= 5
    (logs,) = resources("worker", "AWS::Logs::LogGroup").values()
    assert logs["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${Prefix}-worker"}
    assert "RetentionInDays" in logs["Properties"]


def test_worker_environment_uses_the_names_the_app_reads() -> None:
    fn = resources("worker", "AWS::Lambda::Function")["Function"]["Properties"]
    env = fn["Environment"]["Variables"]
    known = {name for names in SETTINGS.values() for name in names}
    assert set(env) <= known, set(env) - known
    assert env["MESSENGER_STORE"] == "dynamodb"
    assert env["MESSENGER_SESSION_QUEUE_PREFIX"] == {"Fn::Sub": "${Prefix}-session-"}
    assert env["MESSENGER_TOKEN_SECRET_ARN"] == {"Ref": "TokenSecretArn"}
    for name in (
        "MESSENGER_REQUEST_QUEUE_URL",
        "MESSENGER_RESPONSE_QUEUE_URL",
        "MESSENGER_BUCKET",
        "MESSENGER_USERS_TABLE",
        "MESSENGER_MESSAGES_TABLE",
        "MESSENGER_SESSION_TTL",
    ):
        assert name in env
    assert "MESSENGER_TOKEN_SECRET" not in env and "KEY" not in env


# --- web --------------------------------------------------------------------------------------
def test_target_group_is_sticky_and_checks_a_path_voila_serves() -> None:
    (group,) = resources("web", "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    props = group["Properties"]
    attributes = {a["Key"]: a["Value"] for a in props["TargetGroupAttributes"]}
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    assert props["Port"] == 8866 and props["TargetType"] == "ip"
    path = props["HealthCheckPath"]
    assert path.startswith("/voila/static/")
    # Voila serves /voila/static/<file> from its templates' static directories.
    share = Path(sys.prefix) / "share" / "jupyter" / "voila" / "templates"
    served = path.removeprefix("/voila/static/")
    assert any((d / "static" / served).is_file() for d in share.iterdir()), path


def test_load_balancer_listeners_and_websocket_timeout() -> None:
    web = template("web")
    (lb,) = resources("web", "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in lb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["idle_timeout.timeout_seconds"] == {"Ref": "IdleTimeoutSeconds"}
    assert web["Parameters"]["IdleTimeoutSeconds"]["Default"] >= 3600
    listeners = resources("web", "AWS::ElasticLoadBalancingV2::Listener")
    assert listeners["HttpsListener"]["Condition"] == "HasCertificate"
    assert listeners["HttpsListener"]["Properties"]["Protocol"] == "HTTPS"
    redirect, forward = listeners["HttpListener"]["Properties"]["DefaultActions"]["Fn::If"][1:]
    assert redirect[0]["Type"] == "redirect"
    assert redirect[0]["RedirectConfig"]["Protocol"] == "HTTPS"
    assert forward[0]["Type"] == "forward"
    assert web["Conditions"]["HasCertificate"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]
    }


def test_security_groups_open_the_alb_and_only_the_alb_reaches_tasks() -> None:
    groups = resources("web", "AWS::EC2::SecurityGroup")
    alb_ports = {
        (r["FromPort"], r["ToPort"])
        for r in groups["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    }
    assert alb_ports == {(80, 80), (443, 443)}
    assert "SecurityGroupIngress" not in groups["TaskSecurityGroup"]["Properties"]
    # no default allow-all egress: the ALB talks to the tasks only, the tasks to HTTPS only
    alb_egress = groups["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert [r["CidrIp"] for r in alb_egress] == ["127.0.0.1/32"]
    (task_egress,) = groups["TaskSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert (task_egress["FromPort"], task_egress["ToPort"]) == (443, 443)
    (egress,) = resources("web", "AWS::EC2::SecurityGroupEgress").values()
    assert egress["Properties"]["DestinationSecurityGroupId"] == {"Ref": "TaskSecurityGroup"}
    (ingress,) = resources("web", "AWS::EC2::SecurityGroupIngress").values()
    assert ingress["Properties"]["GroupId"] == {"Ref": "TaskSecurityGroup"}
    assert ingress["Properties"]["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    assert ingress["Properties"]["FromPort"] == ingress["Properties"]["ToPort"] == 8866


def test_web_container_gets_locations_not_secrets() -> None:
    (task,) = resources("web", "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    assert container["Image"] == {"Ref": "ImageUri"}
    assert [p["ContainerPort"] for p in container["PortMappings"]] == [8866]
    env = {e["Name"] for e in container["Environment"]}
    assert env == {
        "MESSENGER_REQUEST_QUEUE_URL",
        "MESSENGER_RESPONSE_QUEUE_URL",
        "MESSENGER_BUCKET",
        "AWS_REGION",
    }
    assert "Secrets" not in container
    assert task["Properties"]["RequiresCompatibilities"] == ["FARGATE"]


def test_vpc_and_subnets_are_parameters() -> None:
    params = template("web")["Parameters"]
    assert params["VpcId"]["Type"] == "AWS::EC2::VPC::Id"
    assert params["PublicSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert params["TaskSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"


def test_log_groups_have_retention() -> None:
    for name in TEMPLATE_NAMES:
        for group in resources(name, "AWS::Logs::LogGroup").values():
            assert "RetentionInDays" in group["Properties"], name


def test_stateful_resources_survive_stack_deletion() -> None:
    for name, type_ in (("storage", "AWS::S3::Bucket"), ("data", "AWS::DynamoDB::Table")):
        for resource in resources(name, type_).values():
            assert resource["DeletionPolicy"] == "Retain"
            assert resource["UpdateReplacePolicy"] == "Retain"


def test_templates_parse_as_mappings() -> None:
    for name in TEMPLATE_NAMES:
        data = template(name)
        assert data["AWSTemplateFormatVersion"] == "2010-09-09"
        assert as_list(data["Resources"])
