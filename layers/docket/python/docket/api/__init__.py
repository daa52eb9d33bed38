"""The HTTP API: routes (Powertools APIGatewayHttpResolver), request/response models, error mapping."""
