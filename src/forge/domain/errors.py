"""Forge's named errors. Each message says what to do next; the edges turn them into HTTP, CLI or job errors."""


class ForgeError(Exception):
    """Base of every error Forge raises on purpose."""

    status = 400
    title = "Bad request"


class ConfigError(ForgeError):
    title = "Invalid configuration"


class NotFound(ForgeError):
    status = 404
    title = "Not found"


class JobNotFound(NotFound):
    title = "Job not found"


class TraceNotFound(NotFound):
    title = "Trace not found"


class DatasetNotFound(NotFound):
    title = "Dataset not found"


class ModelNotFound(NotFound):
    title = "Model not found"


class DomainNotFound(NotFound):
    title = "Domain not found"


class AlreadyExists(ForgeError):
    status = 409
    title = "Already exists"


class ConcurrentUpdate(ForgeError):
    """Someone else changed the record since it was read; re-read it and apply the change again."""

    status = 409
    title = "Concurrent update"


class InvalidInput(ForgeError):
    status = 422
    title = "Invalid input"


class DatasetInvalid(ForgeError):
    """A dataset that cannot be trained on (too few examples, format errors); the message says what to fix."""

    status = 422
    title = "Dataset invalid"


class Unauthorized(ForgeError):
    status = 401
    title = "Unauthorized"


class Forbidden(ForgeError):
    status = 403
    title = "Forbidden"


class StorageUnavailable(ForgeError):
    status = 503
    title = "Storage unavailable"


class TooManyRequests(ForgeError):
    """A client refused for a while (e.g. after repeated failed authentications); `retry_after_s` says how long."""

    status = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s
