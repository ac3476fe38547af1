"""IAM documents the cloud side writes: a role for a service with one inline policy, trust, allow."""

from __future__ import annotations

from typing import Any


def role(service: str, actions: list[str], resource: Any, managed: list[str] | None = None) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": trust_policy(service),
            "ManagedPolicyArns": managed or [],
            "Policies": [{"PolicyName": "pravah", "PolicyDocument": allow(actions, resource)}],
        },
    }


def trust_policy(service: str) -> dict[str, Any]:
    """A role's trust policy: `service` may assume it."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def allow(actions: list[str] | str, resource: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}
