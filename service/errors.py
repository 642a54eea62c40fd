"""Exception tree.

ReportsumError
 +-- InputError          bad input: empty, binary, undecodable, oversized (user's fault)
 +-- ConfigError         missing extra, bad model file, unknown backend
 +-- BackendError        the model endpoint failed after the SDK's retries
 |    +-- BackendTimeout
 |    +-- TruncatedOutput    finish_reason == "length": the caller must shrink the request
 |    +-- InvalidOutput      reply still not valid JSON / schema after the repair round
 +-- ReplayMiss          no recording for a request under --backend replay
"""

from __future__ import annotations


class ReportsumError(Exception):
    """Base of every error reportsum raises on purpose."""


class InputError(ReportsumError):
    def __init__(self, message: str, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class OversizedInput(InputError):
    pass


class ConfigError(ReportsumError):
    pass


class BackendError(ReportsumError):
    pass


class BackendTimeout(BackendError):
    pass


class TruncatedOutput(BackendError):
    pass


class InvalidOutput(BackendError):
    pass


class ReplayMiss(ReportsumError):
    pass
