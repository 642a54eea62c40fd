"""A small labelled-request builder shared by the backend and replay tests (a test double:
the schema and messages stand in for the pipeline's real ``label_request``)."""

from typing import Literal

from pydantic import BaseModel

from service.backends.base import LLMRequest
from service.extract import schema_of


class Label(BaseModel):
    label: Literal["A", "B", "C"]


def label_request(**fields) -> LLMRequest:
    """A request for ``Label``; ``fields`` (``messages`` at least) override the defaults."""
    defaults = dict(
        json_schema=schema_of(Label),
        schema_name="label",
        max_tokens=64,
        prompt_version="label-v1",
        context="article 000_test.txt chunk 0 sentence 1",
    )
    return LLMRequest(**(defaults | fields))
