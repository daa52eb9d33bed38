"""Chooses the answerer from settings, and its strict-citations variant per tenant.

``build_answerers(settings)`` is called once per process (``get_query_service``); the query path
then calls ``answerer_for(service.answerer, principal.tenant)`` per request, which picks the strict
variant for tenants in ``settings.strict_citation_tenants`` and works unchanged with any plain
``Answerer`` a test injects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from docket.answer.extractive import ExtractiveAnswerer
from docket.answer.port import Answerer, AnswerEvent
from docket.config import Settings
from docket.errors import ConfigurationError
from docket.models import Answer, SearchHit
from docket.providers.llm import ChatModel


class TenantAnswerers:
    """The configured answerer, plus a strict-citations one for the tenants listed for it.

    It is an ``Answerer`` itself (the default one), so code that does not look at tenants keeps
    working; ``for_tenant`` is what the query path should call.
    """

    def __init__(
        self,
        default: Answerer,
        strict: Answerer | None = None,
        strict_tenants: frozenset[str] = frozenset(),
    ) -> None:
        self.default = default
        self.strict = strict
        self.strict_tenants = strict_tenants

    def for_tenant(self, tenant: str) -> Answerer:
        if self.strict is not None and tenant in self.strict_tenants:
            return self.strict
        return self.default

    def answer(self, question: str, hits: Sequence[SearchHit]) -> Answer:
        return self.default.answer(question, hits)

    def stream(self, question: str, hits: Sequence[SearchHit]) -> Iterator[AnswerEvent]:
        return self.default.stream(question, hits)


def answerer_for(answerer: Answerer, tenant: str) -> Answerer:
    """The answerer for one tenant's query: ``for_tenant`` when there is one, else ``answerer``."""
    if isinstance(answerer, TenantAnswerers):
        return answerer.for_tenant(tenant)
    return answerer


def offline_qa_model() -> ChatModel:
    """The "fake" qa model: a scripted model whose reply is the prompt's extractive answer."""
    from docket.answer.generative import extractive_echo
    from docket.providers.fake import ScriptedChatModel

    return ScriptedChatModel(extractive_echo, name="fake-extractive-echo")


def build_chat_model(settings: Settings) -> ChatModel:
    """The chat model of the "qa" route (``settings.model_routes``, else ``llm_provider`` and
    ``llm_model``): a real provider comes wrapped in retries, fallback, breaker and cost
    accounting (``docket.providers.routing``).

    "fake" is a ``ScriptedChatModel`` whose reply is the extractive answer to the prompt's own
    sources, cited with the prompt's numbers: the local cloud runs the whole LLM path (prompt,
    streaming, verifier, renumbering) offline and deterministically, with no model.
    """
    from docket.providers.routing import route_for

    model = route_for("qa", settings, fake=offline_qa_model)
    if model is None:
        raise ConfigurationError(
            "DOCKET_ANSWERER=llm needs a chat model: set DOCKET_LLM_PROVIDER (it is "
            f"{settings.llm_provider!r}) or a 'qa' route in DOCKET_MODEL_ROUTES"
        )
    return model


def build_answerers(settings: Settings, *, model: ChatModel | None = None) -> TenantAnswerers:
    """The answerers ``settings`` ask for; ``model`` overrides the configured chat model (tests)."""
    if settings.answerer == "extractive":
        # Quoting verbatim is already what strict citations ask for: one answerer serves all.
        return TenantAnswerers(ExtractiveAnswerer(min_score=settings.min_answer_score))
    from docket.answer.generative import GenerativeAnswerer

    chat_model = model or build_chat_model(settings)

    def generative(strict: bool) -> GenerativeAnswerer:
        return GenerativeAnswerer(
            chat_model,
            min_score=settings.min_answer_score,
            max_sources=settings.answer_max_sources,
            strict=strict,
        )

    return TenantAnswerers(generative(False), generative(True), settings.strict_citation_tenants)
