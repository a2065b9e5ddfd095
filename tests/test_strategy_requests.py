"""Every strategy's request, as the local OpenAI and Gemini servers receive it, holds exactly the prompt
parts its name lists (the task and the format prompt always), and offers no tool that would hand the
model a part the strategy leaves out."""

from __future__ import annotations

import json

import pytest

from assistant import prompts
from assistant.prompts import PAPER_STRATEGIES, Strategy
from assistant.session import Session
from tests.helpers.defects import jitter, textured_part
from tests.helpers.protocols import PROTOCOLS

CLASS = "sprocket"  # a word no prompt text, tool description or rule below contains
RULE = "the teeth are evenly spaced around the rim"
STRATEGIES = [*PAPER_STRATEGIES, "class+rules", "expert", "rules+reference+expert", prompts.DEFAULT_STRATEGY]


def _prefix(template: str) -> str:
    return template.split("{")[0]


# the text parts of an analysis request and the prompt part each belongs to ("IMAGE" is a picture)
PART_OF = [
    (_prefix(prompts.TASK), "task"), (prompts.FORMAT, "format"), (_prefix(prompts.CLASS), "class"),
    (_prefix(prompts.RULES), "rules"), (_prefix(prompts.RELATED_RULES), "rules"), (prompts.NO_RULES, "rules"),
    (_prefix(prompts.REFERENCE), "reference"), (prompts.NO_REFERENCE, "reference"), ("Image 'reference", "reference"),
    ("[image: reference", "reference"), ("Image 'query'", "task"), ("[image: query]", "task"),
    (_prefix(prompts.EXPERT), "expert"), ("Image 'expert'", "expert"), ("[image: expert]", "expert"),
]
ORDER = ["task", "class", "rules", "reference", "expert", "format"]
TOOL_PARTS = {"list_classes": "class", "retrieve_knowledge": "rules", "search_rules": "rules",
              "compare_with_reference": "reference"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("strategy-files")
    base = textured_part(seed=11)
    paths = {"query": root / "query.png", "reference": root / "reference.png"}
    jitter(base, seed=1).save(paths["query"])
    jitter(base, seed=2).save(paths["reference"])
    return paths


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    from knowledge.store import KnowledgeBase

    store = KnowledgeBase.open(tmp_path_factory.mktemp("kb"))
    store.add_rule(CLASS, RULE, author="t")
    yield store
    store.close()


def part_of(text: str) -> str:
    if text == "IMAGE":
        return "image"
    found = [part for prefix, part in PART_OF if text.startswith(prefix)]
    assert found, f"a prompt text that belongs to no part: {text[:80]!r}"
    return found[0]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_request_holds_exactly_the_parts_the_strategy_names(protocol, strategy, kb, files, tmp_path):
    wanted = {"task", "format"} | set(Strategy.parse(strategy).parts)
    with protocol.server() as server:
        session = Session(protocol.settings(server, tmp_path), kb)
        events = list(session.send("", [files["query"], files["reference"]], class_name=CLASS, strategy=strategy,
                                   references=0))
        body = server.requests[0].body
    assert any(e.kind == "verdict" for e in events)
    texts = protocol.user_parts(body)
    parts = [part_of(t) for t in texts]
    assert set(parts) - {"image"} == wanted
    assert [p for p in ORDER if p in parts] == sorted(set(parts) - {"image"}, key=ORDER.index)
    assert parts.index("format") == len(parts) - 1
    assert parts.count("image") == 1 + ("reference" in wanted) + ("expert" in wanted)  # query, reference, expert
    everything = json.dumps(body)
    assert (CLASS in everything) == ("class" in wanted)  # nowhere else: not in rules, references, tools
    assert (RULE in everything) == ("rules" in wanted)
    offered = {TOOL_PARTS[name] for name in protocol.tool_names(body) if name in TOOL_PARTS}
    assert offered == wanted & set(TOOL_PARTS.values())


def test_a_tool_the_strategy_withholds_is_refused_when_the_model_calls_it_anyway(kb, files, tmp_path):
    from tests.helpers.protocols import OPENAI

    with OPENAI.server() as server:
        server.enqueue_tool_call("retrieve_knowledge", {"class_name": CLASS})
        session = Session(OPENAI.settings(server, tmp_path), kb)
        list(session.send("", [files["query"]], class_name=CLASS, strategy="naive", references=0))
        second = server.requests[1].body
    results = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert results == ["Error: the tool retrieve_knowledge is not offered in this turn"]
    assert RULE not in json.dumps(second)
