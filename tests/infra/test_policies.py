"""Least privilege, checked on the parsed templates: no wildcard actions anywhere, no "*"
resources in the client, web and worker policies (beyond a documented allow-list), and each
role grants exactly what its component calls."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .cfn import (
    ROOT,
    TEMPLATE_NAMES,
    as_list,
    grants,
    resources,
    statements,
    sub_text,
    template,
)

SESSION_QUEUES = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Prefix}-session-*"
ATTACHMENTS = "arn:${AWS::Partition}:s3:::${BucketName}/attachments/*"

# (template, logical id) of the policies whose resources may not be "*", and the actions
# that may have "*" there because AWS offers no resource-level permission for them.
RUNTIME_POLICIES = [
    ("iam", "ClientPolicy"),
    ("iam", "WebTaskRole"),
    ("iam", "WebExecutionRole"),
    ("iam", "WorkerRole"),
]
STAR_RESOURCE_ALLOWED = {"ecr:GetAuthorizationToken"}


def _all_statements() -> list[tuple[str, dict[str, Any]]]:
    return [(name, s) for name in TEMPLATE_NAMES for s in statements(name)]


@pytest.mark.parametrize(("name", "statement"), _all_statements())
def test_no_wildcard_actions(name: str, statement: dict[str, Any]) -> None:
    assert "NotAction" not in statement and "NotResource" not in statement
    actions = as_list(statement["Action"])
    for action in actions:
        assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+(\.[A-Z]+)*", action) or (
            statement["Effect"] == "Deny" and action.endswith(":*")
        ), f"{name}: wildcard or malformed action {action!r}"
    if statement["Effect"] == "Deny":
        # The one kind of Deny in these templates: every action without TLS.
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_wildcard_check_catches_wildcards() -> None:
    pattern = r"[a-z0-9-]+:[A-Za-z0-9]+(\.[A-Z]+)*"
    for bad in ("*", "s3:*", "sqs:Send*", "s3:Get*Object"):
        assert not re.fullmatch(pattern, bad)


@pytest.mark.parametrize(("name", "logical_id"), RUNTIME_POLICIES)
def test_no_star_resources_in_runtime_policies(name: str, logical_id: str) -> None:
    for statement in statements(name, logical_id):
        if "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= STAR_RESOURCE_ALLOWED, statement["Sid"]


def test_every_star_resource_is_commented() -> None:
    for name in TEMPLATE_NAMES:
        lines = (ROOT / "infra" / name).read_text().splitlines()
        for i, line in enumerate(lines):
            if re.search(r"Resource:\s*\"\*\"", line):
                context = "\n".join(lines[max(0, i - 3) : i + 1])
                assert "#" in context, f"{name}:{i + 1}: say why '*' is needed"


def test_every_role_is_assumed_by_one_service_of_this_account() -> None:
    for name in TEMPLATE_NAMES:
        for logical_id, role in resources(name, "AWS::IAM::Role").items():
            (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            assert trust["Action"] == "sts:AssumeRole"
            assert set(trust["Principal"]) == {"Service"}, logical_id
            assert isinstance(trust["Principal"]["Service"], str), logical_id
            source = trust["Condition"]["StringEquals"]["aws:SourceAccount"]
            assert source == {"Ref": "AWS::AccountId"}, logical_id


# --- the client: web task role and notebook users --------------------------------------------
def test_client_policy_is_exactly_what_the_client_calls() -> None:
    granted = {a: {sub_text(r) for r in rs} for a, rs in grants("iam", "ClientPolicy").items()}
    assert granted == {
        "sqs:SendMessage": {"Ref:RequestQueueArn"},
        "sqs:ReceiveMessage": {"Ref:ResponseQueueArn", SESSION_QUEUES},
        "sqs:DeleteMessage": {"Ref:ResponseQueueArn", SESSION_QUEUES},
        "sqs:ChangeMessageVisibility": {"Ref:ResponseQueueArn", SESSION_QUEUES},
        "s3:PutObject": {ATTACHMENTS},
        "s3:GetObject": {ATTACHMENTS},
    }


def test_web_task_role_has_the_notebook_policy_and_nothing_else() -> None:
    role = resources("iam", "AWS::IAM::Role")["WebTaskRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "ClientPolicy"}]
    assert "Policies" not in role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    outputs = template("main")["Outputs"]
    assert outputs["NotebookUserPolicyArn"]["Value"] == {
        "Fn::GetAtt": ["IamStack", "Outputs.ClientPolicyArn"]
    }
    assert template("iam")["Outputs"]["ClientPolicyArn"]["Value"] == {"Ref": "ClientPolicy"}


def test_execution_role_only_pulls_the_image_and_writes_its_logs() -> None:
    granted = {a: {sub_text(r) for r in rs} for a, rs in grants("iam", "WebExecutionRole").items()}
    repository = (
        "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${EcrRepositoryName}"
    )
    logs = (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/ecs/${Prefix}-web:*"
    )
    assert granted == {
        "ecr:GetAuthorizationToken": {"*"},
        "ecr:BatchCheckLayerAvailability": {repository},
        "ecr:BatchGetImage": {repository},
        "ecr:GetDownloadUrlForLayer": {repository},
        "logs:CreateLogStream": {logs},
        "logs:PutLogEvents": {logs},
    }
    (group,) = resources("web", "AWS::Logs::LogGroup").values()
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": "/ecs/${Prefix}-web"}


# --- the worker -------------------------------------------------------------------------------
def _worker_grants() -> dict[str, set[str]]:
    return {a: {sub_text(r) for r in rs} for a, rs in grants("iam", "WorkerRole").items()}


def test_worker_queue_rights_per_queue() -> None:
    by_queue: dict[str, set[str]] = {}
    for action, targets in _worker_grants().items():
        if action.startswith("sqs:"):
            for target in targets:
                by_queue.setdefault(target, set()).add(action)
    assert by_queue == {
        # the event source mapping polls and deletes; the handler backs failed records off;
        # GetQueueAttributes also reads the redrive policy to find the DLQ
        "Ref:RequestQueueArn": {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        },
        "Ref:ResponseQueueArn": {"sqs:SendMessage"},
        "Ref:DeadLetterQueueArn": {"sqs:GetQueueUrl", "sqs:SendMessage"},
        SESSION_QUEUES: {"sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SendMessage"},
    }


def _dynamodb_calls() -> set[str]:
    """IAM actions for what the DynamoDB store calls, read from its source."""
    store = ROOT / "messenger_widgets" / "store"
    sources = sorted(store.glob("dynamodb*.py"))  # the store, its schema, its groups (v1.1)
    assert sources, "the DynamoDB store is missing"
    text = "\n".join(p.read_text() for p in sources)
    calls = set(re.findall(r"_client\.([a-z_]+)\(", text))
    kinds = set(re.findall(r"""["'](Put|Update|Delete|ConditionCheck)["']\s*:""", text))
    ignored = {"get_waiter", "create_table", "describe_time_to_live", "update_time_to_live"}
    actions = {
        "dynamodb:" + "".join(part.title() for part in call.split("_"))
        for call in calls - ignored - {"transact_write_items"}
    }
    if "transact_write_items" in calls:
        actions |= {f"dynamodb:{kind}Item" for kind in kinds}
    return actions


def test_worker_table_rights_cover_the_store_and_no_more() -> None:
    granted = {a for a in _worker_grants() if a.startswith("dynamodb:")}
    needed = _dynamodb_calls()
    assert needed <= granted, f"the store calls {needed - granted}: grant them in iam.yaml"
    assert granted <= needed, f"the store no longer calls {granted - needed}: drop them"
    for action in granted:
        targets = _worker_grants()[action]
        assert targets <= {
            "Ref:UsersTableArn",
            "Ref:MessagesTableArn",
            "${UsersTableArn}/index/*",
            "${MessagesTableArn}/index/*",
        }
        if action != "dynamodb:Query":
            assert not any("/index/" in t for t in targets), action


def test_worker_s3_secret_and_logs() -> None:
    granted = _worker_grants()
    assert {a for a in granted if a.startswith("s3:")} == {"s3:GetObject", "s3:ListBucket"}
    assert granted["s3:GetObject"] == {ATTACHMENTS}  # HeadObject is authorised by GetObject
    # ListBucket makes HeadObject on a missing key a 404 (a 400 push), not a 403 (the DLQ)
    assert granted["s3:ListBucket"] == {"arn:${AWS::Partition}:s3:::${BucketName}"}
    assert granted["secretsmanager:GetSecretValue"] == {"Ref:TokenSecretArn"}
    assert {a for a in granted if a.startswith(("secretsmanager:", "ssm:", "kms:"))} == {
        "secretsmanager:GetSecretValue"
    }
    log_group = "/aws/lambda/${Prefix}-worker"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        (target,) = granted[action]
        assert target.endswith(f":log-group:{log_group}:*")
    (group,) = resources("worker", "AWS::Logs::LogGroup").values()
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": log_group}
    fn = resources("worker", "AWS::Lambda::Function")["Function"]["Properties"]
    assert fn["FunctionName"] == {"Fn::Sub": "${Prefix}-worker"}


def test_worker_grants_nothing_unexpected() -> None:
    services = {a.split(":")[0] for a in _worker_grants()}
    assert services == {"sqs", "dynamodb", "s3", "secretsmanager", "logs"}


def test_session_prefix_of_the_worker_matches_the_policies() -> None:
    fn = resources("worker", "AWS::Lambda::Function")["Function"]["Properties"]
    prefix = fn["Environment"]["Variables"]["MESSENGER_SESSION_QUEUE_PREFIX"]["Fn::Sub"]
    assert SESSION_QUEUES.endswith(":" + prefix + "*")


def test_no_role_or_policy_name_is_fixed() -> None:
    for name in TEMPLATE_NAMES:
        for resource in resources(name).values():
            if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
                props = resource["Properties"]
                assert "RoleName" not in props and "ManagedPolicyName" not in props
                assert "Path" in props  # roles and policies live under /<Prefix>/
