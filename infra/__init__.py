"""The CDK app (Python): one stack per deployable unit, one construct per capability."""
