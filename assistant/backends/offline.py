"""The built-in offline backend: no network, no key, no model weights.

It turns the experts' evidence and the retrieved rules into a grounded verdict and explanation,
answers follow-ups from that evidence, and recognises explicit teaching (calling add_rule through
the same tool loop as a real model). It reads the structured turn (request.context) because it
cannot look at the pictures itself.
"""

from __future__ import annotations

import json
import uuid

from assistant.backends.base import Backend, ModelReply, ModelRequest, ToolCall
from assistant.backends.offline_answers import verdict_json
from assistant.backends.offline_explain import SHOWN, answer_follow_up, picture_calls
from assistant.backends.registry import register_backend
from tools.agent.consent import asked_to_store_reference, find_lesson
from tools.agent.fence import for_people


@register_backend
class OfflineBackend(Backend):
    name = "offline"
    default_model = "experts"  # the built-in experts (vision, 3-D, series) judge, not a language model
    supports_streaming = False
    needs_network = False

    def complete(self, request: ModelRequest, on_text=None) -> ModelReply:
        turn = request.context
        results = _trailing_tool_messages(request.messages)
        if results:
            return self._reply(self._after_tools(turn, results))
        if turn is None:
            return self._reply("The offline backend needs an inspection context; attach a file to inspect.")
        if turn.mode == "analysis":
            return self._reply(json.dumps(verdict_json(turn)))
        call = self._teaching_call(turn)
        calls = [call] if call is not None else picture_calls(turn)
        if calls:
            return ModelReply(tool_calls=calls, model=self.model, finish_reason="tool_calls")
        return self._reply(answer_follow_up(turn))

    @staticmethod
    def _after_tools(turn, results) -> str:
        """The answer once the tools ran: the explanation the pictures were for, else what the tools said."""
        if turn is not None and any(m.tool_name == SHOWN for m in results):
            return answer_follow_up(turn)
        return "\n".join(for_people(m.text) for m in results)

    def _reply(self, text: str) -> ModelReply:
        return ModelReply(text=text, model=self.model, usage={"input_tokens": 0, "output_tokens": 0})

    @staticmethod
    def _teaching_call(turn) -> ToolCall | None:
        lesson = find_lesson(turn.question, turn.known_classes)
        if lesson is not None:
            name = lesson.class_name or turn.class_name
            if name:
                args = {"class_name": name, "text": lesson.text, "kind": lesson.kind}
                return ToolCall(f"call_{uuid.uuid4().hex[:8]}", "add_rule", args)
        if turn.class_name and turn.artifact_id and asked_to_store_reference(turn.question):
            args = {"artifact_id": turn.artifact_id, "class_name": turn.class_name, "note": "added in chat"}
            return ToolCall(f"call_{uuid.uuid4().hex[:8]}", "add_reference", args)
        return None


def _trailing_tool_messages(messages):
    """The tool results the last request ends with (the pictures the tools returned may follow them)."""
    rest = list(messages)
    if rest and rest[-1].role == "user" and rest[-1].images and len(rest) > 1 and rest[-2].role == "tool":
        rest.pop()  # the agent sends tool pictures in a user message after the results
    tail = []
    for message in reversed(rest):
        if message.role != "tool":
            break
        tail.append(message)
    return list(reversed(tail))
