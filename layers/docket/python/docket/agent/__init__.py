"""The agent: a durable tool-calling loop run by a Step Functions state machine
(state_machines/agent_loop.asl.json), with human approval of high-risk tool calls."""
