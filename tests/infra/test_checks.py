"""cdk-nag (every finding acknowledged with a reason, or synth fails) and cfn-lint (no errors)."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import Synth

# cfn-lint warnings CDK's own constructs produce; each with why it stays
ALLOWED_WARNINGS = {
    "W3005": "CDK adds an explicit DependsOn next to a GetAtt (roles, bucket notifications); "
    "redundant, harmless.",
    "W3045": "CDK's server-access-log bucket sets AccessControl: LogDeliveryWrite, the ACL S3 "
    "log delivery still reads.",
}


def test_nag_ran_and_left_no_unacknowledged_finding(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    failures = [p for p in report["pluginReports"] if p["conclusion"] != "success"]
    assert failures == []
    # the acknowledgments are in the template's Metadata, each with its written reason
    acknowledged: dict[str, str] = {}
    for res in synth.resources.values():
        for rule in (res.get("Metadata") or {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert len(rule.get("reason", "").strip()) >= 20, rule
            acknowledged[rule["id"]] = rule["reason"]
    for expected in ("AwsSolutions-OS4", "AwsSolutions-APIG4", "AwsSolutions-SMG4"):
        assert any(r.startswith(expected) for r in acknowledged), expected


def test_nag_fails_synth_on_a_finding_without_reason(tmp_path: os.PathLike[str]) -> None:
    """The same checks on a queue without SSL or DLQ: synth refuses it."""
    from aws_cdk import App, Aspects, Stack, Validations
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks
    from infra.constructs.nag import WildcardReasons

    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Bad"), "Queue")
    Aspects.of(app).add(WildcardReasons())
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def test_acknowledgment_needs_a_reason() -> None:
    from aws_cdk import App, Stack
    from infra.constructs.nag import acknowledge

    with pytest.raises(ValueError, match="real reason"):
        acknowledge(Stack(App(), "S"), "AwsSolutions-S1", "because")


def test_cfn_lint_reads_the_templates_clean(synth: Synth) -> None:
    from cfnlint.api import lint

    templates = sorted(synth.outdir.glob("*.template.json"))
    assert templates
    matches = []
    for path in templates:
        matches += lint(path.read_text(), regions=["us-east-1"])
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], "\n".join(str(m) for m in errors)
    warnings = {m.rule.id for m in matches if m.rule.id.startswith("W")}
    assert warnings <= set(ALLOWED_WARNINGS), warnings - set(ALLOWED_WARNINGS)
