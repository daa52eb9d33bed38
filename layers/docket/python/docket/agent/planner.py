"""``OfflinePlanner``: a deterministic, rule-based planner behind the chat port. It is NOT an LLM.

It lets the agent loop, the approval flow and the local cloud run end to end offline and
reproducibly (same conversation in, same reply out): it searches, builds a table, e-mails it and
answers for the documented example tasks ("Compare the termination clauses in the Acme, Globex and
Initech contracts in a table and e-mail it to legal@example.com", "Find what our documents say
about data retention and e-mail a summary to ops@example.com", "Summarise the refund policy").

Its plan comes only from the task (the first user message) and from which tool calls it already
made and whether they succeeded. Tool results are data: hits fill the table's cells, but nothing a
document says can add a recipient, a tool call or an approval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from docket.providers.fake import approx_tokens, token_pieces
from docket.providers.llm import (
    ChatDelta,
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    StopReason,
    ToolCall,
)

MODEL_NAME = "offline-planner"
SEARCH, TABLE, EMAIL = "search_documents", "make_table", "send_email"
COLUMNS = ["Document", "What it says", "Source"]
EXCERPT_CHARS = 300
TOP_K = 5
MAX_SUBJECTS = 10
_REFUSAL_WORDS = ("refused", "denied", "not approved")

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# "... and e-mail it to X", "then send a summary to X": from the last such word before the first
# address on, the task is about delivery, not content
_DELIVERY_RE = re.compile(r"\b(?:e-?mail|mail|send)\b", re.IGNORECASE)
_TRAILING_JOIN_RE = re.compile(r"(?:[\s,;:]|\band\b|\bthen\b)+$", re.IGNORECASE)
_TABLE_RE = re.compile(r"\s*\b(?:in|as|into)\s+(?:a\s+)?table(?:\s+form)?\b", re.IGNORECASE)
_SAY_ABOUT_RE = re.compile(r"\bsays?\s+about\s+(.+)$", re.IGNORECASE | re.DOTALL)
_THE_X_RE = re.compile(
    r"\bthe\s+((?:[\w-]+\s+){0,4}?(?:clauses?|provisions?|sections?|terms|policy|policies|"
    r"obligations?))\b",
    re.IGNORECASE,
)
_KINDS = r"(?:contracts?|agreements?|documents?|policies|files|reports?|MSAs?)"
_BETWEEN_RE = re.compile(
    rf"\bbetween\s+(?:the\s+)?(.+?)(?:\s+{_KINDS})?\s*$", re.IGNORECASE | re.DOTALL
)
_IN_THE_RE = re.compile(rf"\bin\s+(?:the\s+|our\s+)?(.+?)\s+{_KINDS}\b", re.IGNORECASE | re.DOTALL)
_LIST_SPLIT_RE = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*", re.IGNORECASE)
_LEADING_VERB_RE = re.compile(
    r"^(?:please\s+)?(?:summari[sz]e|find|explain|describe|list|show|compare|"
    r"tell\s+me\s+about|look\s+up|search\s+for|what\s+(?:is|are))\s+",
    re.IGNORECASE,
)
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
_WORD_RE = re.compile(r"[^\W\d_]+")
_STOPWORDS = {"the", "and", "our", "about", "what", "with", "for", "from", "that", "this"}


# --- the task ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskPlan:
    """What the task asks for, parsed once from its text."""

    task: str
    recipients: tuple[str, ...]
    topic: str
    subjects: tuple[str, ...]
    wants_table: bool
    wants_email: bool

    def queries(self) -> list[str]:
        if self.subjects:
            return [f"{subject} {self.topic}"[:1000] for subject in self.subjects]
        return [self.topic[:1000]]

    def title(self) -> str:
        """The e-mail subject and table title, e.g. "Comparison: termination clauses (Acme, Globex)"."""
        if self.subjects:
            return _cut(f"Comparison: {self.topic} ({', '.join(self.subjects)})", 200)
        return _cut(f"Summary: {self.topic}", 200)


def parse_task(task: str) -> TaskPlan:
    text = " ".join(task.split())
    recipients = _unique(m.group(0) for m in _EMAIL_RE.finditer(text))[:20]
    without_addresses = _EMAIL_RE.sub(" ", text)
    lowered = without_addresses.lower()
    core = _TABLE_RE.sub("", _content_part(text)).strip(" .,;:!?")
    comparing = "compar" in lowered
    subjects = _subjects(core) if comparing else ()
    return TaskPlan(
        task=task,
        recipients=tuple(recipients),
        topic=_topic(core) or text,
        subjects=subjects,
        wants_table=comparing or bool(re.search(r"\btables?\b", lowered)),
        wants_email=bool(recipients) and "mail" in lowered,
    )


def _content_part(text: str) -> str:
    """The task without its delivery phrase ("and e-mail it to legal@example.com")."""
    first = _EMAIL_RE.search(text)
    if first is None:
        return text
    head = text[: first.start()]
    if cuts := list(_DELIVERY_RE.finditer(head)):
        head = head[: cuts[-1].start()]
    head = _TRAILING_JOIN_RE.sub("", _EMAIL_RE.sub(" ", head))
    return head if head.strip() else _EMAIL_RE.sub(" ", text[first.end() :])


def _topic(core: str) -> str:
    if m := _SAY_ABOUT_RE.search(core):
        return m.group(1).strip(" .,;:!?")
    if m := _THE_X_RE.search(core):
        return m.group(1).strip()
    rest = _LEADING_VERB_RE.sub("", core)
    return re.sub(r"^(?:the|our)\s+", "", rest, flags=re.IGNORECASE).strip(" .,;:!?")


def _subjects(core: str) -> tuple[str, ...]:
    m = _BETWEEN_RE.search(core) or _IN_THE_RE.search(core)
    if not m:
        return ()
    parts = (
        re.sub(r"^the\s+", "", p.strip(), flags=re.IGNORECASE)
        for p in _LIST_SPLIT_RE.split(m.group(1))
    )
    return tuple(_unique(p for p in parts if p)[:MAX_SUBJECTS])


def _unique(items: Any) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out


# --- what happened so far ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One tool call the planner made, with its result (``None`` when no result came back)."""

    call: ToolCall
    result: str | None
    is_error: bool

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.is_error

    @property
    def reason(self) -> str:
        first = (self.result or "no result came back").strip().splitlines() or ["(empty)"]
        return _cut(first[0], 200)


def _outcomes(messages: Sequence[ChatMessage]) -> list[Outcome]:
    results = {m.tool_call_id: m for m in messages if m.role == "tool" and m.tool_call_id}
    out: list[Outcome] = []
    for message in messages:
        for call in message.tool_calls if message.role == "assistant" else []:
            res = results.get(call.id)
            out.append(Outcome(call, res.content if res else None, res.is_error if res else True))
    return out


@dataclass(frozen=True)
class Hit:
    document_id: str
    title: str
    page_start: int | None
    score: float
    text: str

    @property
    def source(self) -> str:
        return f"{self.document_id} p.{self.page_start}" if self.page_start else self.document_id


def parse_hits(outcome: Outcome | None) -> list[Hit]:
    """The hits of a search result, best first; anything that is not a JSON list of hits is none."""
    if outcome is None or not outcome.ok:
        return []
    try:
        raw = json.loads(outcome.result or "")
    except ValueError:
        raw = _whole_objects(outcome.result or "")
    if isinstance(raw, dict):
        raw = raw.get("hits") or raw.get("results") or []
    if not isinstance(raw, list):
        return []
    hits: list[Hit] = []
    for item in raw:
        if not isinstance(item, dict) or not str(item.get("text") or "").strip():
            continue
        doc = str(item.get("document_id") or "?")
        page = item.get("page_start")
        score = item.get("score")
        hits.append(
            Hit(
                document_id=doc,
                title=str(item.get("title") or doc),
                page_start=page if isinstance(page, int) and not isinstance(page, bool) else None,
                score=float(score) if isinstance(score, int | float) else 0.0,
                text=str(item["text"]),
            )
        )
    return sorted(hits, key=lambda h: -h.score)  # stable: ties keep the tool's order


def _whole_objects(text: str) -> list[Any]:
    """The complete objects at the start of a JSON list cut short (a result cut to a preview)."""
    start = text.lstrip()
    if not start.startswith("["):
        return []
    decoder, pos = json.JSONDecoder(), 1
    out: list[Any] = []
    while True:
        while pos < len(start) and start[pos] in " \t\r\n,":
            pos += 1
        try:
            item, pos = decoder.raw_decode(start, pos)
        except ValueError:
            return out
        out.append(item)


@dataclass(frozen=True)
class Row:
    document: str
    says: str
    source: str
    found: bool

    def cells(self) -> list[str]:
        return [self.document, self.says, self.source]


def build_rows(plan: TaskPlan, searches: Sequence[Outcome]) -> list[Row]:
    """One row per subject, else one per distinct document of the hits.

    A subject's row is its best hit that names it (in the title or the text): the search for
    "Acme termination clauses" may rank Globex's clause first when Acme has none, and a Globex
    clause under Acme's name would be worse than "not found".
    """
    if plan.subjects:
        rows: list[Row] = []
        for i, subject in enumerate(plan.subjects):
            hits = parse_hits(searches[i] if i < len(searches) else None)
            best = next((h for h in hits if _names(h, subject)), None)
            if best is None:
                rows.append(Row(subject, "not found", "-", found=False))
                continue
            label = (
                best.title if subject.lower() in best.title.lower() else f"{subject}: {best.title}"
            )
            rows.append(Row(label, excerpt(best.text, plan.topic), best.source, found=True))
        return rows
    seen: set[str] = set()
    rows = []
    for hit in parse_hits(searches[0] if searches else None):
        if hit.document_id not in seen:
            seen.add(hit.document_id)
            rows.append(Row(hit.title, excerpt(hit.text, plan.topic), hit.source, found=True))
    return rows


def _names(hit: Hit, subject: str) -> bool:
    pattern = re.compile(rf"\b{re.escape(subject)}\b", re.IGNORECASE)
    return bool(pattern.search(hit.title) or pattern.search(hit.text))


_HEADING_RE = re.compile(r"(?m)^[ \t]{0,3}#{1,6}[ \t]+[^\n]*$")


def excerpt(text: str, topic: str, limit: int = EXCERPT_CHARS) -> str:
    """The sentence that best matches the topic, with the next (else the previous) one when both
    fit in ``limit``: one or two whole sentences, never a cut one unless a single is too long."""
    body = _HEADING_RE.sub("", text)  # a Markdown heading is a label, not a sentence
    flat = " ".join((body if body.strip() else text).split())
    sentences = [s for s in _SENTENCE_RE.split(flat) if s] or [""]
    keys = {w.lower()[:5] for w in _WORD_RE.findall(topic) if len(w) >= 3} - _STOPWORDS

    def overlap(sentence: str) -> int:
        words = [w.lower() for w in _WORD_RE.findall(sentence)]
        return sum(any(w.startswith(k) for w in words) for k in keys)

    best = max(range(len(sentences)), key=lambda i: (overlap(sentences[i]), -i))
    out = sentences[best]
    if len(out) > limit:
        return out[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    if best + 1 < len(sentences) and len(out) + 1 + len(sentences[best + 1]) <= limit:
        return f"{out} {sentences[best + 1]}"
    if best > 0 and len(sentences[best - 1]) + 1 + len(out) <= limit:
        return f"{sentences[best - 1]} {out}"
    return out


def markdown_table(rows: Sequence[Row]) -> str:
    def cell(value: str) -> str:
        return " ".join(value.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def _bullets(rows: Sequence[Row]) -> str:
    return "\n".join(f"- {row.document}: {row.says} ({row.source})" for row in rows)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# --- the planner ---------------------------------------------------------------------------------------


class OfflinePlanner:
    """A deterministic planner that implements ``ChatModel``: search, tabulate, e-mail, answer."""

    @property
    def name(self) -> str:
        return MODEL_NAME

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self._respond(request)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        response = self._respond(request)
        if response.text:
            yield ChatDelta(text=response.text)
        yield response

    # --- internals ------------------------------------------------------------------------------

    def _respond(self, request: ChatRequest) -> ChatResponse:
        text, calls = self._decide(request)
        stop_reason: StopReason = "tool_use" if calls else "end_turn"
        if not calls:
            pieces = token_pieces(text)
            if len(pieces) > request.max_tokens:
                text, stop_reason = "".join(pieces[: request.max_tokens]), "max_tokens"
        input_tokens = approx_tokens(request.system) + sum(
            approx_tokens(m.content) + sum(approx_tokens(c.arguments) for c in m.tool_calls)
            for m in request.messages
        )
        return ChatResponse(
            text=text,
            input_tokens=input_tokens,
            output_tokens=approx_tokens(text) + sum(approx_tokens(c.arguments) for c in calls),
            model=MODEL_NAME,
            stop_reason=stop_reason,
            tool_calls=calls,
        )

    def _decide(self, request: ChatRequest) -> tuple[str, list[ToolCall]]:
        task = next((m.content for m in request.messages if m.role == "user"), "")
        if not task.strip():
            return "There is no task to work on.", []
        plan = parse_task(task)
        offered = {tool.name for tool in request.tools}
        step = sum(m.role == "assistant" for m in request.messages)
        outcomes = _outcomes(request.messages)
        made = {o.call.name for o in outcomes}

        def call(i: int, name: str, args: dict[str, Any]) -> ToolCall:
            return ToolCall(id=f"call_{step}_{i}", name=name, arguments=json.dumps(args))

        if SEARCH in offered and SEARCH not in made:
            return "", [
                call(i, SEARCH, {"query": q, "top_k": TOP_K}) for i, q in enumerate(plan.queries())
            ]
        rows = build_rows(plan, [o for o in outcomes if o.call.name == SEARCH])
        found = any(row.found for row in rows)
        if plan.wants_table and found and TABLE in offered and TABLE not in made:
            args = {"title": plan.title(), "columns": COLUMNS, "rows": [r.cells() for r in rows]}
            return "", [call(0, TABLE, {**args, "format": "markdown"})]
        if plan.wants_email and found and EMAIL in offered and EMAIL not in made:
            args = {
                "to": list(plan.recipients),
                "subject": plan.title(),
                "body": _email_body(plan, rows),
            }
            return "", [call(0, EMAIL, args)]
        return _final_answer(plan, offered, outcomes, rows), []


def _email_body(plan: TaskPlan, rows: Sequence[Row]) -> str:
    if plan.subjects:
        intro = f"Here is a comparison of the {plan.topic} in the {_join(plan.subjects)} documents."
    else:
        intro = f"Here is what our documents say about {plan.topic}."
    content = markdown_table(rows) if plan.wants_table else _bullets(rows)
    sources = _unique(f"{row.document}: {row.source}" for row in rows if row.found)
    body = f"Hello,\n\n{intro}\n\n{content}\n\nSources:\n" + "\n".join(f"- {s}" for s in sources)
    return _cut(
        body + "\n\n(Prepared by the Docket agent from the documents it could read.)\n", 100_000
    )


def _final_answer(
    plan: TaskPlan, offered: set[str], outcomes: Sequence[Outcome], rows: Sequence[Row]
) -> str:
    by_name = {o.call.name: o for o in outcomes}  # the last of each (one table, one e-mail)
    searches = [o for o in outcomes if o.call.name == SEARCH]
    found = any(row.found for row in rows)
    parts: list[str] = []
    if SEARCH not in offered and not searches:
        parts.append("I could not search the documents: the search_documents tool was not offered.")
    elif searches:
        queries = [_query(o) for o in searches]
        parts.append(f"I searched the documents for: {'; '.join(queries)}.")
        parts += [
            f'The search for "{_query(o)}" failed ({o.reason}); I went on with what I had.'
            for o in searches
            if not o.ok
        ]
    if not found:
        parts.append(f"I found nothing in the documents about {plan.topic}.")
    elif plan.wants_table:
        parts.append(f"{plan.title()}:\n\n{markdown_table(rows)}")
        if TABLE not in offered:
            parts.append("The make_table tool was not offered, so I wrote the table myself.")
        elif (table := by_name.get(TABLE)) and not table.ok:
            parts.append(f"The make_table tool failed ({table.reason}); the table above is mine.")
    else:
        parts.append(f"What the documents say about {plan.topic}:\n\n{_bullets(rows)}")
    if plan.wants_email:
        parts.append(_email_outcome(plan, offered, by_name.get(EMAIL), found))
    return "\n\n".join(parts)


def _email_outcome(plan: TaskPlan, offered: set[str], email: Outcome | None, found: bool) -> str:
    to = ", ".join(plan.recipients)
    if email is None:
        if not found:
            return f"I did not e-mail {to}: there was nothing to send."
        if EMAIL not in offered:
            return f"I did not e-mail {to}: the send_email tool was not offered."
        return f"I did not e-mail {to}."
    if email.ok:
        return f'E-mail sent to {to} (subject "{plan.title()}").'
    if email.result is not None and any(w in email.result.lower() for w in _REFUSAL_WORDS):
        return f"The e-mail to {to} was not sent: the approver refused it ({email.reason})."
    return f"The e-mail to {to} was not sent: it failed ({email.reason})."


def _query(outcome: Outcome) -> str:
    try:
        return str(json.loads(outcome.call.arguments).get("query", ""))
    except (ValueError, AttributeError):
        return outcome.call.arguments
