"""docket: document question answering and human-approved agents on AWS serverless."""

__version__ = "0.1.0"
