"""The tool contract: a pydantic input schema (the model's tool definition), a risk level fixed in
code, and ``run``. The registry validates a model's call before anything runs.

Risk is decided here, from the validated arguments, never by the model: ``Tool.risk(args)`` is
code (``http_request`` is low for GET and high for any other method), and nothing a model or a
document says can change it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from docket.agent.models import RiskLevel
from docket.errors import InvalidToolArguments, UnknownTool
from docket.models import Principal
from docket.providers.llm import ToolSpec

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True)
class ToolOutput:
    """What a tool returns: ``content`` is shown to the model; ``data`` is kept for the timeline."""

    content: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolContext:
    """Who runs the tool and for which call; tools act only within ``principal``'s tenant and
    groups (the task owner's, fixed when the task started)."""

    task_id: str
    principal: Principal
    execution: str
    step: int
    call_id: str
    idempotency_key: str  # execution, step, call id and the hash of the arguments
    timeout_s: float
    services: Any  # docket.agent.tools.services.ToolServices: the ports tools use


class Tool(ABC, Generic[ArgsT]):
    name: ClassVar[str]
    description: ClassVar[str]
    Input: ClassVar[type[BaseModel]]
    side_effect: ClassVar[bool] = False  # writes through the outbox (at most once per key)

    def risk(self, args: ArgsT) -> RiskLevel:
        return "low"

    def summary(self, args: ArgsT) -> list[tuple[str, str]]:
        """What will happen, as (label, value) lines, for the approval page and Slack message."""
        return [
            (k, v if isinstance(v, str) else json.dumps(v)) for k, v in args.model_dump().items()
        ]

    @abstractmethod
    def run(self, ctx: ToolContext, args: ArgsT) -> ToolOutput: ...

    def spec(self) -> ToolSpec:
        schema = self.Input.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, input_schema=schema)


@dataclass(frozen=True)
class ValidatedCall:
    tool: Tool[Any]
    args: BaseModel
    risk: RiskLevel


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool[Any]]) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name} registered twice")
            self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return sorted(self._tools)

    def get(self, name: str) -> Tool[Any]:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(
                f"there is no tool named {name!r}; the tools are: {', '.join(self.names())}"
            ) from None

    def specs(self) -> list[ToolSpec]:
        return [self._tools[n].spec() for n in self.names()]

    def validate(self, name: str, arguments: str | dict[str, Any]) -> ValidatedCall:
        """The tool and its parsed arguments, or ``UnknownTool`` / ``InvalidToolArguments``."""
        tool = self.get(name)
        if isinstance(arguments, str):
            try:
                raw = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise InvalidToolArguments(
                    f"arguments for {name} are not valid JSON: {exc.msg} at position {exc.pos}"
                ) from None
        else:
            raw = arguments
        if not isinstance(raw, dict):
            raise InvalidToolArguments(f"arguments for {name} must be a JSON object")
        try:
            args = tool.Input.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InvalidToolArguments(f"arguments for {name} are invalid: {problems}") from None
        return ValidatedCall(tool=tool, args=args, risk=tool.risk(args))


ToolFactory = Callable[[], ToolRegistry]
