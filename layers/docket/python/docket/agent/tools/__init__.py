"""The agent's tools: ``default_registry()`` offers all eight to the model.

Low risk (run at once): search_documents, read_document, make_table, query_table, and
http_request with GET. High risk (a person approves first; side effects through the outbox):
send_email, post_slack_message, delete_document, and http_request with any other method.
"""

from __future__ import annotations

from docket.agent.tools.base import Tool, ToolContext, ToolOutput, ToolRegistry, ValidatedCall
from docket.agent.tools.documents import DeleteDocument, ReadDocument
from docket.agent.tools.dynamo import QueryTable
from docket.agent.tools.http import HttpRequest
from docket.agent.tools.messaging import PostSlackMessage, SendEmail
from docket.agent.tools.search import SearchDocuments
from docket.agent.tools.table import MakeTable

__all__ = [
    "DeleteDocument",
    "HttpRequest",
    "MakeTable",
    "PostSlackMessage",
    "QueryTable",
    "ReadDocument",
    "SearchDocuments",
    "SendEmail",
    "Tool",
    "ToolContext",
    "ToolOutput",
    "ToolRegistry",
    "ValidatedCall",
    "default_registry",
]


def default_registry() -> ToolRegistry:
    return ToolRegistry(
        [
            SearchDocuments(),
            ReadDocument(),
            MakeTable(),
            SendEmail(),
            PostSlackMessage(),
            HttpRequest(),
            DeleteDocument(),
            QueryTable(),
        ]
    )
