"""CloudFormation custom resource: writes docket's OpenSearch roles and maps IAM roles to them.

Runs as the domain's master role (fine-grained access control), signs with SigV4 ("es"), and
answers CloudFormation through the pre-signed ResponseURL. Standard library and botocore only.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

SECURITY = "/_plugins/_security/api"


def _request(endpoint: str, method: str, path: str, body: dict[str, Any]) -> None:
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = f"https://{endpoint}{path}"
    data = json.dumps(body).encode()
    request = AWSRequest(
        method=method, url=url, data=data, headers={"Content-Type": "application/json"}
    )
    credentials = botocore.session.get_session().get_credentials()
    SigV4Auth(credentials, "es", os.environ["AWS_REGION"]).add_auth(request)
    req = urllib.request.Request(url, data=data, method=method, headers=dict(request.headers))
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def apply(endpoint: str, roles: dict[str, Any], mappings: dict[str, list[str]]) -> None:
    for name, definition in roles.items():
        _request(endpoint, "PUT", f"{SECURITY}/roles/{name}", definition)
    for name, backend_roles in mappings.items():
        _request(
            endpoint, "PUT", f"{SECURITY}/rolesmapping/{name}", {"backend_roles": backend_roles}
        )


def _respond(event: dict[str, Any], status: str, reason: str = "") -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:2000],
            "PhysicalResourceId": event.get("PhysicalResourceId") or "docket-search-access",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    req = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def handler(event: dict[str, Any], context: Any) -> None:
    try:
        if event["RequestType"] in ("Create", "Update"):
            props = event["ResourceProperties"]
            apply(props["Endpoint"], props["Roles"], props["Mappings"])
        # Delete: the domain keeps the roles (it is retained, or deleted with them)
        _respond(event, "SUCCESS")
    except Exception as exc:
        _respond(event, "FAILED", f"{type(exc).__name__}: {exc}")
