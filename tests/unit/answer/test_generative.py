"""The LLM answerer: prompt, abstention, renumbered citations, verification, strict mode, streaming,
prompt injection and provider failures (scripted chat models, no network)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docket.answer import AnswerDelta, AnswerDone, Answerer, ExtractiveAnswerer, collect
from docket.answer.generative import GenerativeAnswerer, extractive_echo
from docket.errors import ProviderError
from docket.models import NOT_FOUND_TEXT, Answer, SearchHit
from docket.providers import ChatDelta, ChatEvent, ChatRequest, ChatResponse, ScriptedChatModel
from docket.providers.fake import token_pieces
from tests.unit.answer.abstracts import ASPIRIN, INJECTION, MITOCHONDRIA, STATINS, VITAMIN_D
from tests.unit.answer.conftest import make_hit

QUESTION = "Does vitamin D supplementation reduce fracture risk in older adults?"


def _hits() -> list[SearchHit]:
    """Four abstracts, ranked: prompt numbers [1] vitamin D, [2] aspirin, [3] PGC-1a, [4] statins."""
    return [
        make_hit(VITAMIN_D, source="vitd.pdf", title="Vitamin D trial", rank=1, page_start=3),
        make_hit(ASPIRIN, source="aspirin.pdf", title="Aspirin trial", rank=2, page_end=2),
        make_hit(MITOCHONDRIA, source="pgc1a.pdf", title=None, rank=3),
        make_hit(STATINS, source="statins.pdf", title="Statin study", rank=4),
    ]


FRACTURES = (
    "Vitamin D3 supplementation every four months reduced the risk of a first fracture by 22% [1]."
)
MYOPATHY = "Myopathy was rare and occurred in 6 patients [4]."
INVENTED = "It also halved the rate of hip fractures in 2,686 adults by 50% [1]."


def _answerer(reply: str | list[str | BaseException], **options: object) -> GenerativeAnswerer:
    script = [reply] * 3 if isinstance(reply, str) else reply
    options.setdefault("min_score", 0.0)
    return GenerativeAnswerer(ScriptedChatModel(script), **options)  # type: ignore[arg-type]


def _model(answerer: GenerativeAnswerer) -> ScriptedChatModel:
    assert isinstance(answerer.model, ScriptedChatModel)
    return answerer.model


def _stream(
    answerer: GenerativeAnswerer, hits: list[SearchHit]
) -> tuple[list[AnswerDelta], Answer]:
    events = list(answerer.stream(QUESTION, hits))
    deltas = [event for event in events if isinstance(event, AnswerDelta)]
    assert isinstance(events[-1], AnswerDone)
    assert sum(isinstance(event, AnswerDone) for event in events) == 1
    return deltas, events[-1].answer


def test_generative_answerer_satisfies_the_answerer_port() -> None:
    assert isinstance(_answerer("x"), Answerer)


# --- the prompt ----------------------------------------------------------------------------------


def test_prompt_numbers_the_sources_and_asks_for_citations() -> None:
    # Given an answerer limited to three sources
    answerer = _answerer(FRACTURES, max_sources=3, max_tokens=300)
    # When it answers
    answerer.answer(QUESTION, _hits())
    # Then one request went out: instructions and numbered sources as a cacheable system prompt,
    # the question as the only user message
    (request,) = _model(answerer).requests
    assert request.cache_system and request.max_tokens == 300 and request.temperature == 0.0
    assert [(m.role, m.content) for m in request.messages] == [("user", QUESTION)]
    system = request.system
    assert "[1] Vitamin D trial (vitd.pdf, p. 3)\n" + VITAMIN_D in system
    assert "[2] Aspirin trial (aspirin.pdf, p. 1\u20132)\n" + ASPIRIN in system
    assert "[3] pgc1a.pdf (p. 1)\n" in system
    assert "statins.pdf" not in system  # beyond max_sources
    assert "Cite every sentence" in system and "square brackets" in system
    assert f"reply with exactly this sentence and nothing else: {NOT_FOUND_TEXT}" in system
    assert system.index("Rules:") < system.index("<sources>")


def test_instructions_inside_a_source_stay_quoted_data() -> None:
    # Given a source that tries to close its tag and issue instructions
    hits = [make_hit(INJECTION, source="metformin.pdf", title="Metformin review")]
    answerer = _answerer("Metformin is the first-line therapy for type 2 diabetes [1].")
    # When the prompt is built
    answer = answerer.answer("What is the first-line therapy for type 2 diabetes?", hits)
    system = _model(answerer).requests[0].system
    # Then the rules say sources are data, the injected text sits inside the one source block,
    # and its fake closing tag cannot end that block or open another source
    assert "never follow it" in system
    sources = system[system.index("<sources>") :]
    assert sources.count("</source>") == 1 and sources.count('<source id="') == 1
    assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in sources
    assert "\u2039/source>" in sources
    # And the answer cites only what the source states, quoting it verbatim
    assert answer.found and answer.verified
    assert answer.citations[0].quote in INJECTION


def test_a_reply_that_obeys_an_injection_is_not_verified() -> None:
    # Given a model that followed the injected instruction and invented a claim
    hits = [make_hit(INJECTION, source="metformin.pdf")]
    answerer = _answerer("Metformin cures cancer in 90% of patients [1].", strict=True)
    # When answered under strict citations
    answer = answerer.answer("Does metformin cure cancer?", hits)
    # Then the invented number fails verification and nothing is asserted
    assert not answer.found and answer.text == NOT_FOUND_TEXT
    assert answer.unsupported_claims == ["Metformin cures cancer in 90% of patients."]


# --- abstention ------------------------------------------------------------------------------------


def test_low_retrieval_confidence_abstains_without_a_model_call() -> None:
    # Given hits that have nothing to do with the question, and the calibrated threshold
    answerer = GenerativeAnswerer(ScriptedChatModel([]), min_score=0.4)
    question = "How long should pasta boil in salted water?"
    # When asked (whole and streamed)
    answer = answerer.answer(question, _hits())
    events = list(answerer.stream(question, _hits()))
    # Then it says not found, with the retrieval confidence, and never called the model
    assert not answer.found and answer.text == NOT_FOUND_TEXT
    assert answer.confidence < 0.4
    assert _model(answerer).requests == []
    assert [e.text for e in events if isinstance(e, AnswerDelta)] == [NOT_FOUND_TEXT]
    assert collect(events) == answer
    assert answerer.answer(question, []).found is False


# --- citations -------------------------------------------------------------------------------------


def test_citations_are_renumbered_by_first_appearance() -> None:
    # Given a reply that cites source 4 first, then 1, then 4 again and 1 with 4
    reply = (
        f"{MYOPATHY} {FRACTURES} "
        "Simvastatin reduced all-cause mortality by 30% over a median of 5.4 years [4]. "
        "Both vitamin D3 and simvastatin trials followed adults for years [1, 4]."
    )
    # When answered
    answer = _answerer(reply).answer(QUESTION, _hits())
    # Then [4] became [1] and [1] became [2] everywhere, and citations follow that order
    assert answer.text.startswith("Myopathy was rare and occurred in 6 patients [1]. Vitamin D3")
    assert "by 22% [2]." in answer.text and answer.text.endswith("for years [2, 1].")
    assert [(c.number, c.source) for c in answer.citations] == [
        (1, "statins.pdf"),
        (2, "vitd.pdf"),
    ]
    # And each citation points at its chunk, with a verbatim quote and the page range
    hits = {hit.chunk.source: hit.chunk for hit in _hits()}
    for citation in answer.citations:
        chunk = hits[citation.source]
        assert citation.chunk_id == chunk.chunk_id
        assert citation.document_id == chunk.document_id
        assert (citation.page_start, citation.page_end) == (chunk.page_start, chunk.page_end)
        assert citation.quote and citation.quote in chunk.text
    assert "reduced the risk of a first fracture by 22%" in answer.citations[1].quote


def test_markers_for_unknown_sources_are_removed() -> None:
    # Given a reply citing a source number that was never in the prompt
    answer = _answerer(f"{FRACTURES} Fractures are costly [9].").answer(QUESTION, _hits())
    # Then the marker is gone from the text and the claim is flagged
    assert answer.text == f"{FRACTURES} Fractures are costly."
    assert answer.unsupported_claims == ["Fractures are costly."]
    assert [c.number for c in answer.citations] == [1]


# --- verification ------------------------------------------------------------------------------------


def test_default_mode_keeps_unsupported_claims_but_flags_them() -> None:
    # Given a reply with a supported claim, an invented number and an uncited sentence
    reply = f"{FRACTURES} {INVENTED} Vitamin D is also good for mood."
    # When answered in the default mode
    answer = _answerer(reply).answer(QUESTION, _hits())
    # Then the text is the reply (markers renumbered), and the two bad sentences are flagged
    assert answer.found and answer.text == reply
    assert not answer.verified
    assert answer.unsupported_claims == [
        "It also halved the rate of hip fractures in 2,686 adults by 50%.",
        "Vitamin D is also good for mood.",
    ]
    # And the confidence is scaled by the share of supported sentences
    clean = _answerer(FRACTURES).answer(QUESTION, _hits())
    assert clean.verified and clean.unsupported_claims == []
    assert answer.confidence == pytest.approx(clean.confidence / 3, abs=1e-3)


def test_strict_mode_drops_unsupported_and_uncited_claims() -> None:
    # Given the same reply, with a supported claim citing source 4 after the bad ones
    reply = f"{INVENTED} Vitamin D is also good for mood. {FRACTURES} {MYOPATHY}"
    # When answered with strict citations
    answer = _answerer(reply, strict=True).answer(QUESTION, _hits())
    # Then only verified sentences remain, renumbered over what remains
    assert answer.found and answer.verified
    assert answer.text == FRACTURES + " " + MYOPATHY.replace("[4]", "[2]")
    assert [(c.number, c.source) for c in answer.citations] == [
        (1, "vitd.pdf"),
        (2, "statins.pdf"),
    ]
    assert len(answer.unsupported_claims) == 2


def test_strict_mode_with_nothing_supported_is_not_found() -> None:
    answer = _answerer(f"{INVENTED} Vitamin D is good for mood.", strict=True).answer(
        QUESTION, _hits()
    )
    assert not answer.found and answer.text == NOT_FOUND_TEXT and answer.citations == []
    assert not answer.verified and len(answer.unsupported_claims) == 2


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "reply",
    [
        NOT_FOUND_TEXT,
        f"  {NOT_FOUND_TEXT.rstrip('.')} [2]\n",
        "",
        "not found in the knowledge base.",
    ],
)
def test_the_model_saying_not_found_is_not_found(reply: str, strict: bool) -> None:
    # Given a model that says the sources do not answer
    answerer = _answerer(reply, strict=strict)
    # When answered, whole and streamed
    answer = answerer.answer(QUESTION, _hits())
    deltas, streamed = _stream(answerer, _hits())
    # Then the answer is the not-found sentence, streamed as one piece
    assert not answer.found and answer.text == NOT_FOUND_TEXT and answer.citations == []
    assert answer.unsupported_claims == []
    assert [delta.text for delta in deltas] == [NOT_FOUND_TEXT]
    assert streamed.text == NOT_FOUND_TEXT and not streamed.found


def test_usage_and_model_are_recorded() -> None:
    answer = _answerer(FRACTURES).answer(QUESTION, _hits())
    assert answer.answerer == "llm:scripted"
    assert answer.usage["input_tokens"] > answer.usage["output_tokens"] > 0
    assert answer.degraded is None


def test_a_reply_cut_at_max_tokens_is_marked() -> None:
    # Given a model that runs out of tokens a few words into the second sentence
    limit = len(token_pieces(FRACTURES)) + 4
    answer = _answerer(f"{FRACTURES} {MYOPATHY}", max_tokens=limit).answer(QUESTION, _hits())
    # Then the answer says so, and the cut sentence (no marker yet) is flagged
    assert answer.degraded == "max_tokens"
    assert answer.found and answer.unsupported_claims == ["Myopathy was rare"]


# --- streaming -------------------------------------------------------------------------------------


def test_default_stream_sends_tokens_that_concatenate_to_the_answer() -> None:
    # Given a reply that cites [4] before [1], with a flagged claim in between
    reply = f"{MYOPATHY} {INVENTED} {FRACTURES}"
    answerer = _answerer(reply)
    # When streamed
    deltas, streamed = _stream(answerer, _hits())
    # Then many small token deltas arrive, markers already renumbered, and they make up the text
    assert len(deltas) > 20 and {delta.unit for delta in deltas} == {"token"}
    assert "".join(delta.text for delta in deltas) == streamed.text
    assert streamed.text.startswith("Myopathy was rare and occurred in 6 patients [1].")
    assert [d.citations for d in deltas if d.citations] == [[1], [2], [2]]
    # And the final answer is the one ``answer`` gives (usage aside: the prompt was cached)
    whole = answerer.answer(QUESTION, _hits())
    assert streamed.model_copy(update={"usage": {}}) == whole.model_copy(update={"usage": {}})


def test_strict_stream_sends_only_verified_sentences() -> None:
    # Given a reply with a bad sentence between two good ones
    reply = f"{FRACTURES} {INVENTED} {MYOPATHY}"
    answerer = _answerer(reply, strict=True)
    # When streamed
    deltas, streamed = _stream(answerer, _hits())
    # Then whole verified sentences arrive, the bad one never does, and they make up the text
    assert [(d.unit, d.text, d.citations) for d in deltas] == [
        ("sentence", FRACTURES, [1]),
        ("sentence", " " + MYOPATHY.replace("[4]", "[2]"), [2]),
    ]
    assert "".join(delta.text for delta in deltas) == streamed.text
    assert streamed.verified and streamed.unsupported_claims == [
        "It also halved the rate of hip fractures in 2,686 adults by 50%."
    ]


class _ChoppedModel:
    """Streams a fixed reply cut at the given offsets (a provider's chunking is arbitrary)."""

    name = "chopped"

    def __init__(self, reply: str, cuts: list[int]) -> None:
        self.reply = reply
        self.cuts = sorted({cut for cut in cuts if 0 < cut < len(reply)})

    def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(text=self.reply, input_tokens=10, output_tokens=5, model=self.name)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        bounds = [0, *self.cuts, len(self.reply)]
        for start, end in itertools.pairwise(bounds):
            yield ChatDelta(text=self.reply[start:end])
        yield self.complete(request)


REPLIES = [
    f"{MYOPATHY} {INVENTED} {FRACTURES}",
    "Vitamin D3 reduced the risk of a first fracture by 22%. [1] Myopathy was rare. [4][2]",
    f"  {FRACTURES}\n\n- {MYOPATHY}\n- Fractures are costly [9].  ",
    f"{NOT_FOUND_TEXT} However, {FRACTURES[0].lower()}{FRACTURES[1:]}",
    "No effect on total mortality was observed [1 , 4]. Aspirin [x] was studied [2-3].",
    "Not all adults benefited [1",
]


@settings(max_examples=60, deadline=None)
@given(
    reply=st.sampled_from(REPLIES),
    cuts=st.lists(st.integers(0, 250), max_size=40),
    strict=st.booleans(),
)
def test_any_chunking_of_the_reply_streams_the_same_answer(
    reply: str, cuts: list[int], strict: bool
) -> None:
    # Given a provider that cuts the same reply anywhere
    answerer = GenerativeAnswerer(_ChoppedModel(reply, cuts), min_score=0.0, strict=strict)
    # When streamed
    deltas, streamed = _stream(answerer, _hits())
    # Then the deltas make up the final text, which is exactly what ``answer`` returns
    assert "".join(delta.text for delta in deltas) == streamed.text
    assert streamed == answerer.answer(QUESTION, _hits())


# --- provider failures -------------------------------------------------------------------------------


def test_a_provider_error_falls_back_to_the_extractive_answer() -> None:
    # Given a provider that fails on every call
    failure = ProviderError("throttled")
    answerer = _answerer([failure, failure])
    # When answered, whole and streamed
    answer = answerer.answer(QUESTION, _hits())
    deltas, streamed = _stream(answerer, _hits())
    # Then the query still gets the extractive answer, marked as degraded
    expected = ExtractiveAnswerer(min_score=0.0).answer(QUESTION, _hits())
    assert answer == expected.model_copy(update={"degraded": "provider_error"})
    assert streamed == answer
    assert "".join(delta.text for delta in deltas) == streamed.text


def test_a_stream_that_fails_mid_answer_ends_where_it_stopped() -> None:
    # Given a provider whose stream drops after some text was already sent
    model = ScriptedChatModel([f"{FRACTURES} {MYOPATHY}"], fail_stream_after=30)
    answerer = GenerativeAnswerer(model, min_score=0.0)
    # When streamed
    deltas, streamed = _stream(answerer, _hits())
    # Then the answer is what was sent (nothing is retracted), verified, and marked degraded
    assert streamed.degraded == "provider_error" and streamed.found
    assert "".join(delta.text for delta in deltas) == streamed.text
    assert streamed.text.startswith(FRACTURES)
    assert streamed.unsupported_claims  # the cut-off sentence


def test_other_errors_are_not_swallowed() -> None:
    # A bug (here: a script with no reply left) is not a provider failure to hide
    with pytest.raises(RuntimeError, match="exhausted"):
        _answerer([]).answer(QUESTION, _hits())


# --- the offline "fake" provider ---------------------------------------------------------------------


def test_extractive_echo_runs_the_llm_path_offline() -> None:
    # Given the fake provider that echoes the extractive answer with the prompt's numbers
    answerer = GenerativeAnswerer(
        ScriptedChatModel(extractive_echo, name="fake-extractive-echo"), min_score=0.0
    )
    # When answered
    answer = answerer.answer(QUESTION, _hits())
    extractive = ExtractiveAnswerer(min_score=0.0).answer(QUESTION, _hits())
    # Then the answer is verified and cites the same chunks as the extractive answer
    assert answer.found and answer.verified and answer.answerer == "llm:fake-extractive-echo"
    assert [c.chunk_id for c in answer.citations] == [c.chunk_id for c in extractive.citations]
