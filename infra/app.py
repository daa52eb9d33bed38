"""CDK app entry point (``cdk.json`` → ``.venv/bin/python infra/app.py``).

Synthesizes offline: no lookups, no Docker, environment-agnostic unless ``docket:account`` and
``docket:region`` (or CDK_DEFAULT_ACCOUNT/REGION) are set; honours CDK_OUTDIR. cdk-nag's
AwsSolutions checks run on every synth and fail it on any finding without a written reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts infra/ first on sys.path, where infra/constructs would shadow the
# `constructs` library: put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from typing import Any  # noqa: E402

from aws_cdk import App, Aspects, Environment, Tags, Validations  # noqa: E402


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    """The app with its one stack; ``outdir`` defaults to CDK_OUTDIR (set by the CDK CLI)."""
    from cdk_nag import AwsSolutionsChecks

    from infra import constants as c
    from infra.constructs.nag import WildcardReasons
    from infra.layer import layer_asset_path
    from infra.settings import DeploymentSettings
    from infra.stacks.docket_stack import DocketStack

    app = App(outdir=outdir, context=context)
    settings = DeploymentSettings.from_context(app.node.try_get_context)
    env = (
        Environment(account=settings.account, region=settings.region)
        if settings.account and settings.region
        else None
    )
    stack = DocketStack(
        app,
        f"{c.SERVICE}-{settings.stage}",
        settings=settings,
        layer_asset=str(layer_asset_path(settings.layer_asset)),
        env=env,
        description=f"docket ({settings.stage}): document Q&A and human-approved agents",
    )
    Tags.of(stack).add("project", c.SERVICE)
    Tags.of(stack).add("stage", settings.stage)
    Aspects.of(app).add(WildcardReasons())
    # acknowledged findings are also written into the template's Metadata (cdk_nag), with reasons
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )
    return app


if __name__ == "__main__":
    build_app().synth()
