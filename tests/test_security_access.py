"""Access with sign-in on: an operator changes no knowledge through the panel's API, the chat or the backend switch.

tests/test_access.py checks each panel action's role check directly and tests/test_ui_app.py the
add-rule endpoint and the "rule for ..." lesson; here every knowledge-changing endpoint of the
launched app is called by an operator through gradio_client, each way of teaching in the chat is
tried, and the knowledge base must be exactly as it was.
"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.app import launched_app
from tests.test_security_ui import ask

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("access_app")) as running:
        running.rule = running.kb.add_rule("widget", "The three holes are round.", author="erik")
        yield running


def _knowledge(kb) -> tuple:
    """Everything an operator must not be able to change."""
    rules = [(r.id, r.text, r.kind, r.active) for c in kb.classes() for r in kb.rules(c, include_inactive=True)]
    return sorted(rules), sorted(s.id for c in kb.classes() for s in kb.references(c)), kb.classes()


@pytest.fixture
def operator(app):
    """A signed-in operator whose conversation has inspected a picture (so a query could be stored)."""
    client = app.client("olga")
    ask(client, "is anything wrong?", [app.files["bad"]])
    return client


ENDPOINTS = {
    "add_rule": lambda app: ("gadget", "An operator's rule.", "normality"),
    "edit_rule": lambda app: (app.rule.id, "Changed by an operator.", "defect", False),
    "deactivate_rule": lambda app: (app.rule.id,),
    "request_delete": lambda app: (app.rule.id,),
    "add_reference": lambda app: ("widget",),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_an_operator_is_refused_by_every_knowledge_endpoint(app, operator, endpoint):
    before = _knowledge(app.kb)
    status = operator.predict(*ENDPOINTS[endpoint](app), api_name=f"/{endpoint}")
    assert str(status).startswith("⚠️ only experts may change knowledge")
    assert _knowledge(app.kb) == before


def test_an_operator_cannot_delete_even_by_confirming_directly(app, operator):
    before = _knowledge(app.kb)
    operator.predict(app.rule.id, api_name="/request_delete")
    operator.predict(api_name="/confirm_delete")
    assert _knowledge(app.kb) == before


@pytest.mark.parametrize("lesson", ["remember that a widget must have three holes",
                                    "For widgets, the label must always be straight",
                                    "a widget must never show a scratch",
                                    "add this as a reference", "store it as a normal reference"])
def test_an_operator_cannot_teach_in_the_chat(app, operator, lesson):
    before = _knowledge(app.kb)
    ask(operator, lesson)
    assert _knowledge(app.kb) == before


def test_an_operator_cannot_switch_the_backend_or_point_it_at_another_server(app, operator):
    refused = operator.predict("openai", "", app.model_server.url + "/v1", api_name="/use_backend")
    answer = ask(operator, "and this one?", [app.files["bad"]])[-1]["text"]
    assert refused.startswith("⚠️ only experts may change the backend")
    assert "offline/experts" in answer and not app.model_server.requests


def test_without_signing_in_no_endpoint_answers(app):
    before = _knowledge(app.kb)
    posted = httpx.post(app.url + "gradio_api/call/add_rule", json={"data": ["widget", "anonymous rule", "normality"]})
    assert posted.status_code in (401, 403) and _knowledge(app.kb) == before
