"""Change data capture: rows of an operational DynamoDB table (service-desk tickets...) kept in the
knowledge base as documents (docket.sync.service)."""
