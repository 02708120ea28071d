"""Write the CloudFormation template configuration for the deploy stage of the pipeline.

CodeBuild runs `python infra/deploy_config.py OUT.json` with its environment: plain values
from the pipeline stack (artifact bucket, ECR repository) and the deploy settings it reads
from SSM Parameter Store. The file holds resource names, ids and locations only: the token
secret lives in Secrets Manager and is never read here.

SSM parameters cannot be empty, so optional settings hold the word `none` (see
pipeline.yaml); it becomes an empty parameter value.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

EMPTY = "none"

# main.yaml parameter <- environment variable
PARAMETERS: dict[str, str] = {
    "Prefix": "PREFIX",
    "LambdaCodeBucket": "ARTIFACT_BUCKET",
    "LambdaCodeKey": "LAMBDA_CODE_KEY",
    "ImageUri": "IMAGE_URI",
    "EcrRepositoryName": "ECR_REPOSITORY_NAME",
    "VpcId": "VPC_ID",
    "PublicSubnetIds": "PUBLIC_SUBNET_IDS",
    "TaskSubnetIds": "TASK_SUBNET_IDS",
    "AssignPublicIp": "ASSIGN_PUBLIC_IP",
    "CertificateArn": "CERTIFICATE_ARN",
    "DomainName": "DOMAIN_NAME",
    "AlarmEmail": "ALARM_EMAIL",
}
REQUIRED = ("Prefix", "LambdaCodeBucket", "LambdaCodeKey")
WEB_REQUIRED = ("VpcId", "PublicSubnetIds", "TaskSubnetIds")


def build_config(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The template configuration; raises `KeyError` naming a missing required variable."""
    parameters: dict[str, str] = {}
    for parameter, variable in PARAMETERS.items():
        value = env.get(variable, "").strip()
        if value.lower() == EMPTY:
            value = ""
        if not value and parameter in REQUIRED:
            raise KeyError(f"{variable} is not set (main.yaml parameter {parameter})")
        if value:
            parameters[parameter] = value
    if "ImageUri" in parameters:
        for parameter in WEB_REQUIRED:
            if parameter not in parameters:
                raise KeyError(
                    f"{PARAMETERS[parameter]} is not set: the web tier (IMAGE_URI) needs it"
                )
    return {"Parameters": parameters, "Tags": {"app": "messenger"}}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: deploy_config.py OUT.json", file=sys.stderr)
        return 2
    try:
        config = build_config(os.environ)
    except KeyError as exc:
        print(f"deploy_config: {exc.args[0]}", file=sys.stderr)
        return 1
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}: {', '.join(sorted(config['Parameters']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
