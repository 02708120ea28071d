"""The delivery path: pipeline.yaml (roles, SSM-fed CodeBuild, stages), buildspec.yml and
infra/deploy_config.py, checked against each other and against main.yaml."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from .cfn import APP_TEMPLATES, INFRA, ROOT, as_list, grants, resources, sub_text, template

SCHEMA_REGION = "us-east-1"  # any region: the schemas' handler permissions are the same

# Handler permissions of the resource types main.yaml uses that the deploy role does not
# grant, because they serve features of those types the templates do not use.
NOT_USED: dict[str, str] = {
    **dict.fromkeys(
        [
            "cognito-idp:DescribeUserPoolClient",
            "elasticfilesystem:DescribeMountTargets",
            "s3files:ListMountTargets",
            "firehose:TagDeliveryStream",
            "kinesis:DescribeStream",
            "kinesis:PutRecords",
        ],
        "integrations the templates do not configure",
    ),
    "s3:REST.PUT.OBJECT": "not an IAM action",
    **dict.fromkeys(
        [
            "dynamodb:AssociateTableReplica",
            "dynamodb:CreateTableReplica",
            "dynamodb:ImportTable",
            "dynamodb:DescribeImport",
            "dynamodb:EnableKinesisStreamingDestination",
            "dynamodb:DisableKinesisStreamingDestination",
            "dynamodb:UpdateKinesisStreamingDestination",
            "dynamodb:PutResourcePolicy",
            "dynamodb:DeleteResourcePolicy",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:UpdateItem",
            "s3:GetObjectMetadata",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
        ],
        "table replicas, imports, streams, resource policies and their data access",
    ),
    **dict.fromkeys(
        [
            "s3:CreateBucketMetadataTableConfiguration",
            "s3:DeleteBucketMetadataTableConfiguration",
            "s3:UpdateBucketMetadataAnnotationTableConfiguration",
            "s3:UpdateBucketMetadataInventoryTableConfiguration",
            "s3:UpdateBucketMetadataJournalTableConfiguration",
            "s3:DeleteBucketAnalyticsConfiguration",
            "s3:DeleteBucketCors",
            "s3:DeleteBucketEncryption",
            "s3:DeleteBucketLifecycle",
            "s3:DeleteBucketMetricsConfiguration",
            "s3:DeleteBucketReplication",
            "s3:DeleteBucketWebsite",
            "s3:DeleteObject",
            "s3:PutAccelerateConfiguration",
            "s3:PutAnalyticsConfiguration",
            "s3:PutBucketAbac",
            "s3:PutBucketAcl",
            "s3:PutBucketCORS",
            "s3:PutBucketLogging",
            "s3:PutBucketNotification",
            "s3:PutBucketObjectLockConfiguration",
            "s3:PutBucketReplication",
            "s3:PutBucketVersioning",
            "s3:PutBucketWebsite",
            "s3:PutIntelligentTieringConfiguration",
            "s3:PutInventoryConfiguration",
            "s3:PutMetricsConfiguration",
            "s3:PutObjectAcl",
            "s3:PutObjectLockConfiguration",
            "s3:PutReplicationConfiguration",
            "s3tables:CreateNamespace",
            "s3tables:CreateTable",
            "s3tables:CreateTableBucket",
            "s3tables:GetTable",
            "s3tables:GetTableMetadataLocation",
            "s3tables:PutTableBucketPolicy",
            "s3tables:PutTableEncryption",
            "s3tables:PutTablePolicy",
            "s3tables:UpdateTableMetadataLocation",
        ],
        "bucket features the attachments bucket does not configure (read calls are granted)",
    ),
    **dict.fromkeys(
        [
            "iam:AttachGroupPolicy",
            "iam:AttachUserPolicy",
            "iam:DetachGroupPolicy",
            "iam:DetachUserPolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:DeleteRolePermissionsBoundary",
        ],
        "the templates attach policies to roles only and set no permissions boundary",
    ),
    **dict.fromkeys(
        [
            "lambda:AssociateRuntimeAlias",
            "lambda:DeleteFunctionCodeSigningConfig",
            "lambda:GetCodeSigningConfig",
            "lambda:GetLayerVersion",
            "lambda:PassCapacityProvider",
            "lambda:PutFunctionCodeSigningConfig",
            "lambda:PutFunctionScalingConfig",
        ],
        "code signing, layers and capacity providers are not used",
    ),
    **dict.fromkeys(
        [
            "logs:AssociateKmsKey",
            "logs:CreateLogDelivery",
            "logs:DeleteDataProtectionPolicy",
            "logs:DeleteIndexPolicy",
            "logs:DeleteResourcePolicy",
            "logs:DisassociateKmsKey",
            "logs:PutBearerTokenAuthentication",
            "logs:PutDataProtectionPolicy",
            "logs:PutIndexPolicy",
            "logs:PutLogGroupDeletionProtection",
            "logs:PutResourcePolicy",
            "sns:PutDataProtectionPolicy",
        ],
        "log group KMS keys, data protection, index and resource policies are not used",
    ),
    **dict.fromkeys(
        [
            "ecs:PutAccountSetting",
            "ecs:PutAccountSettingDefault",
            "elasticloadbalancing:ModifyCapacityReservation",
            "elasticloadbalancing:ModifyIpPools",
            "secretsmanager:ReplicateSecretToRegions",
            "secretsmanager:RemoveRegionsFromReplication",
        ],
        "account-wide settings, capacity reservations, IPAM pools and secret replication",
    ),
}


def _types_used() -> set[str]:
    return {r["Type"] for name in APP_TEMPLATES for r in resources(name).values()}


def _handler_permissions() -> dict[str, set[str]]:
    """permission -> the resource types whose create/read/update/delete handlers list it."""
    out: dict[str, set[str]] = {}
    for type_ in sorted(_types_used() - {"AWS::CloudFormation::WaitConditionHandle"}):
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, type_).schema
        for handler in ("create", "read", "update", "delete"):
            for permission in schema["handlers"].get(handler, {}).get("permissions", []):
                out.setdefault(permission, set()).add(type_)
    return out


def test_deploy_role_grants_every_handler_permission_the_stack_needs() -> None:
    granted = set(grants("pipeline", "DeployRole"))
    missing = set(_handler_permissions()) - granted - set(NOT_USED)
    assert not missing, {p: sorted(_handler_permissions()[p]) for p in sorted(missing)}


def test_deploy_role_grants_nothing_no_handler_needs() -> None:
    granted = set(grants("pipeline", "DeployRole"))
    assert granted <= set(_handler_permissions()), granted - set(_handler_permissions())
    assert not (granted & set(NOT_USED)), granted & set(NOT_USED)


def test_deploy_role_is_scoped_to_the_prefix_where_arns_are_known() -> None:
    scoped = {
        "sqs",
        "sns",
        "cloudwatch",
        "dynamodb",
        "secretsmanager:CreateSecret",
        "lambda:CreateFunction",
        "events",
        "iam:CreateRole",
        "iam:CreatePolicy",
        "s3:CreateBucket",
    }
    for action, targets in grants("pipeline", "DeployRole").items():
        service = action.split(":")[0]
        if service in scoped or action in scoped:
            for target in targets:
                text = sub_text(target)
                assert "${Prefix}" in text or "${AppStackName}" in text, (action, text)


def test_pass_role_is_limited_to_the_services_that_take_the_roles() -> None:
    for name in ("pipeline",):
        for logical_id in resources(name, "AWS::IAM::Role"):
            for statement in _statements(name, logical_id):
                if "iam:PassRole" in as_list(statement["Action"]):
                    assert "iam:PassedToService" in statement["Condition"]["StringEquals"]


def _statements(name: str, logical_id: str) -> list[dict[str, Any]]:
    role = resources(name)[logical_id]["Properties"]
    return [s for p in role.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]


# --- CodeBuild and SSM ------------------------------------------------------------------------
def _project() -> dict[str, Any]:
    (project,) = resources("pipeline", "AWS::CodeBuild::Project").values()
    return project["Properties"]


def test_build_settings_come_from_parameter_store_and_only_those_are_readable() -> None:
    env = _project()["Environment"]["EnvironmentVariables"]
    from_ssm = {v["Value"]["Ref"] for v in env if v["Type"] == "PARAMETER_STORE"}
    parameters = set(resources("pipeline", "AWS::SSM::Parameter"))
    assert from_ssm == parameters and len(parameters) >= 5
    readable = {
        re.fullmatch(r".*:parameter\$\{(\w+)\}", sub_text(t)).group(1)  # type: ignore[union-attr]
        for t in grants("pipeline", "BuildRole")["ssm:GetParameters"]
    }
    assert readable == parameters
    assert {a for a in grants("pipeline", "BuildRole") if a.startswith("ssm:")} == {
        "ssm:GetParameters"
    }
    for parameter in resources("pipeline", "AWS::SSM::Parameter").values():
        assert parameter["Properties"]["Type"] == "String"  # ids and names: no secrets
        name = parameter["Properties"]["Name"]["Fn::Sub"]
        assert name.startswith("/${Prefix}/deploy/")


def test_pipeline_stages_source_build_deploy() -> None:
    (pipeline,) = resources("pipeline", "AWS::CodePipeline::Pipeline").values()
    stages = pipeline["Properties"]["Stages"]
    assert [s["Name"] for s in stages] == ["Source", "BuildAndTest", "Deploy"]
    (source,) = stages[0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == {"Ref": "ConnectionArn"}
    assert source["Configuration"]["FullRepositoryId"] == {"Ref": "FullRepositoryId"}
    assert source["Configuration"]["BranchName"] == {"Ref": "BranchName"}
    (build,) = stages[1]["Actions"]
    assert build["ActionTypeId"]["Provider"] == "CodeBuild"
    (deploy,) = stages[2]["Actions"]
    assert deploy["ActionTypeId"]["Provider"] == "CloudFormation"
    config = deploy["Configuration"]
    artifact = build["OutputArtifacts"][0]["Name"]
    files = set(_buildspec()["artifacts"]["files"])
    for key in ("TemplatePath", "TemplateConfiguration"):
        name, _, path = config[key].partition("::")
        assert name == artifact and f"build/{path}" in files
    assert config["RoleArn"] == {"Fn::GetAtt": ["DeployRole", "Arn"]}
    assert "CAPABILITY_IAM" in config["Capabilities"]


def test_artifact_bucket_is_private_encrypted_and_tls_only() -> None:
    bucket = resources("pipeline", "AWS::S3::Bucket")["ArtifactBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (policy,) = resources("pipeline", "AWS::S3::BucketPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_build_role_pushes_only_its_repository() -> None:
    granted = grants("pipeline", "BuildRole")
    for action, targets in granted.items():
        if action.startswith("ecr:") and action != "ecr:GetAuthorizationToken":
            assert [sub_text(t) for t in targets] == ["GetAtt:WebRepository.Arn"], action
    repository = resources("pipeline", "AWS::ECR::Repository")["WebRepository"]["Properties"]
    assert repository["RepositoryName"] == {"Fn::Sub": "${Prefix}-web"}
    assert template("main")["Parameters"]["EcrRepositoryName"]["Default"] == "messenger-web"


# --- buildspec.yml ----------------------------------------------------------------------------
def _buildspec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "buildspec.yml").read_text())


def _commands() -> str:
    phases = _buildspec()["phases"]
    return "\n".join(
        c
        for phase in ("install", "pre_build", "build", "post_build")
        for c in phases[phase]["commands"]
    )


def test_buildspec_runs_every_step() -> None:
    spec = _buildspec()
    assert str(spec["version"]) == "0.2"
    assert str(spec["phases"]["install"]["runtime-versions"]["python"]) == "3.11"
    commands = _commands()
    for step in (
        'pip install --quiet -e ".[test]"',
        "ruff check",
        "./dev test",
        "cfn-lint infra/*.yaml",
        "infra/build_lambda.sh build/worker.zip",
        "docker build",
        "docker push",
        "aws cloudformation package --template-file infra/main.yaml",
        "infra/deploy_config.py build/deploy-config.json",
    ):
        assert step in commands, step
    assert set(spec["artifacts"]["files"]) == {
        "build/main.packaged.yaml",
        "build/deploy-config.json",
    }


def test_buildspec_variables_are_provided() -> None:
    provided = {v["Name"] for v in _project()["Environment"]["EnvironmentVariables"]}
    provided |= set(_buildspec()["env"]["variables"])
    assigned = set(re.findall(r"^\s*([A-Z_]+)=", _commands(), re.MULTILINE))
    builtin = {"AWS_REGION", "CODEBUILD_RESOLVED_SOURCE_VERSION", "CODEBUILD_BUILD_NUMBER"}
    builtin |= {"CODEBUILD_BUILD_SUCCEEDING", "PWD"}
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", _commands()))
    assert used <= provided | assigned | builtin, used - provided - assigned - builtin
    deploy = _deploy_config()
    needed = set(deploy.PARAMETERS.values())
    assert needed <= provided | assigned, needed - provided - assigned


# --- deploy_config.py -------------------------------------------------------------------------
def _deploy_config() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_config", INFRA / "deploy_config.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD_ENV = {
    "PREFIX": "messenger",
    "ARTIFACT_BUCKET": "artifacts",
    "LAMBDA_CODE_KEY": "lambda/worker-abc.zip",
    "IMAGE_URI": "registry.example/messenger-web:abc-1",
    "ECR_REPOSITORY_NAME": "messenger-web",
    "VPC_ID": "vpc-1",
    "PUBLIC_SUBNET_IDS": "subnet-1,subnet-2",
    "TASK_SUBNET_IDS": "subnet-3,subnet-4",
    "ASSIGN_PUBLIC_IP": "DISABLED",
    "CERTIFICATE_ARN": "none",
    "DOMAIN_NAME": "none",
    "ALARM_EMAIL": "none",
    "MESSENGER_TOKEN_SECRET": "must never be copied",
}


def test_deploy_config_maps_to_main_parameters() -> None:
    module = _deploy_config()
    config = module.build_config(BUILD_ENV)
    main = template("main")["Parameters"]
    assert set(module.PARAMETERS) <= set(main)
    required = {k for k, v in main.items() if "Default" not in v}
    assert required <= set(config["Parameters"])
    assert config["Parameters"]["ImageUri"] == BUILD_ENV["IMAGE_URI"]
    assert "CertificateArn" not in config["Parameters"]  # "none" -> absent -> the default ""
    assert "must never be copied" not in json.dumps(config)


def test_deploy_config_refuses_a_web_tier_without_a_network() -> None:
    module = _deploy_config()
    with pytest.raises(KeyError, match="VPC_ID"):
        module.build_config({**BUILD_ENV, "VPC_ID": "none"})
    backend_only = {**BUILD_ENV, "IMAGE_URI": "", "VPC_ID": "none"}
    assert "ImageUri" not in module.build_config(backend_only)["Parameters"]
    with pytest.raises(KeyError, match="LAMBDA_CODE_KEY"):
        module.build_config({**BUILD_ENV, "LAMBDA_CODE_KEY": ""})


def test_deploy_config_script_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "deploy-config.json"
    result = subprocess.run(
        [sys.executable, str(INFRA / "deploy_config.py"), str(out)],
        env={**BUILD_ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = json.loads(out.read_text())
    assert written["Parameters"]["LambdaCodeKey"] == "lambda/worker-abc.zip"
    failed = subprocess.run(
        [sys.executable, str(INFRA / "deploy_config.py"), str(out)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1 and "PREFIX is not set" in failed.stderr
