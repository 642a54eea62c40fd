"""Model backends. Each implements ``Backend.complete(LLMRequest) -> LLMResponse``.

``make_backend(settings)`` is the single place that picks one: openai (any
OpenAI-compatible endpoint), local (embedded llama.cpp), replay (recordings, no network).
With ``settings.record`` the chosen backend is wrapped so every exchange is written to
``settings.recordings``.
"""

from __future__ import annotations

from service.backends.base import Backend, LLMRequest, LLMResponse
from service.config import Settings
from service.errors import ConfigError

__all__ = ["Backend", "LLMRequest", "LLMResponse", "make_backend"]


def make_backend(settings: Settings) -> Backend:
    name = settings.resolved_backend()
    backend: Backend
    if name == "openai":
        from service.backends.openai import OpenAIBackend

        backend = OpenAIBackend.from_settings(settings)
    elif name == "local":
        from service.backends.local import LocalBackend

        # The default digest (learned labeller, no assist) makes no call: it must run on the
        # base install, without llama-cpp-python or the model file (issue 24).
        backend = LocalBackend.from_settings(settings, lazy=not settings.model_needed(name))
    elif name == "replay":
        from service.backends.replay import make_replay_backend

        backend = make_replay_backend(settings)
    else:  # pragma: no cover - Settings validates the name
        raise ConfigError(f"unknown backend {name!r}")
    if settings.record or settings.record_missing:
        if name == "replay":
            raise ConfigError("--record needs a real backend (openai or local), not replay")
        from service.recordings import RecordingBackend

        backend = RecordingBackend(backend, settings.recordings, reuse=settings.record_missing)
    return backend
