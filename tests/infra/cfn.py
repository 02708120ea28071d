"""Helpers for the infrastructure tests: templates parsed with cfn-lint's CloudFormation
YAML loader (it understands !Ref, !Sub, !GetAtt, ...), as plain dicts and lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATE_NAMES = sorted(p.name for p in INFRA.glob("*.yaml"))
# The application stack (main.yaml and its nested stacks); pipeline.yaml deploys it.
APP_TEMPLATES = ("main", "secrets", "messaging", "storage", "data", "iam", "worker", "web")


@cache
def _load(name: str) -> str:
    path = INFRA / (name if name.endswith(".yaml") else f"{name}.yaml")
    return json.dumps(cfn_yaml.load(str(path)))


def template(name: str) -> dict[str, Any]:
    """A fresh copy of infra/<name>.yaml with intrinsics as {"Ref": ...}, {"Fn::Sub": ...}."""
    return json.loads(_load(name))


def resources(name: str, type_: str | None = None) -> dict[str, dict[str, Any]]:
    found = template(name)["Resources"]
    return {k: v for k, v in found.items() if type_ is None or v["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(name: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(logical id, where, document) for every permission policy of a template (role
    inline policies, managed policies, bucket policies); trust policies are not included."""
    for logical_id, resource in template(name)["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield logical_id, policy["PolicyName"], policy["PolicyDocument"]
        elif resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy"):
            yield logical_id, "PolicyDocument", props["PolicyDocument"]


def statements(name: str, logical_id: str | None = None) -> Iterator[dict[str, Any]]:
    for owner, _, document in policy_documents(name):
        if logical_id is None or owner == logical_id:
            yield from as_list(document["Statement"])


def allowed_actions(name: str, logical_id: str) -> set[str]:
    return {
        action
        for statement in statements(name, logical_id)
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }


def grants(name: str, logical_id: str) -> dict[str, list[Any]]:
    """action -> the Resource entries of the Allow statements that grant it."""
    out: dict[str, list[Any]] = {}
    for statement in statements(name, logical_id):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            out.setdefault(action, []).extend(as_list(statement["Resource"]))
    return out


def sub_text(value: Any) -> str:
    """The text of a Resource entry: a literal, a !Sub string, or "Ref:Name"."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    if "Ref" in value:
        return f"Ref:{value['Ref']}"
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return "GetAtt:" + (target if isinstance(target, str) else ".".join(target))
    raise AssertionError(f"unexpected resource form {value!r}")
