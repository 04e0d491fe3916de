"""The exceptions of the kvworker clients.

Error replies of the worker raise the class named by their wire code (the
original tool's exception names), so callers of the ATLAS tool keep their
``except`` clauses. Four more classes are raised by the client itself:
``WorkerUnavailableError`` (no worker serves the queue), ``KvTimeoutError``
(no reply in time), ``KvInvalidReplyError`` (a reply no worker sends) and
``KvConnectionError`` (RabbitMQ cannot be reached, or it closed the connection
or channel).
"""


class KeyValueStoreError(Exception):
    """An error reply from the store; ``code`` is the wire code, ``message`` the worker's text.

    Also the code of invalid requests (bad namespace, key, TTL, delta, unknown provider,
    a ``message_id`` reused for another request).
    """

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code or type(self).__name__
        self.message = message


class NamespaceQuotaExceededError(KeyValueStoreError):
    """The write would push the namespace over its quota; nothing was changed."""


class GlobalQuotaExceededError(KeyValueStoreError):
    """The write would push the whole store over the global quota; nothing was changed."""


class InvalidValueTypeError(KeyValueStoreError):
    """Increment of a value that is not an integer, or past the integer limit."""


class ValueSerializationError(KeyValueStoreError):
    """The value cannot be stored as JSON (raised by the client before sending, or by the worker)."""


class AccessDeniedError(KeyValueStoreError):
    """The persona's policy does not allow the operation."""


class StoreUnavailableError(KeyValueStoreError):
    """The worker could not reach its storage after retries."""


class VersionConflictError(KeyValueStoreError):
    """An ``if_version`` that does not match the live entry; nothing was changed.

    ``current_version`` is the entry's version, or None when the key is absent.
    """

    def __init__(self, message, code=None, current_version=None):
        super().__init__(message, code)
        self.current_version = current_version


class WorkerUnavailableError(KeyValueStoreError):
    """No worker serves the operation: its queue does not exist (or, as KvTimeoutError, no reply came in time)."""


class KvTimeoutError(WorkerUnavailableError):
    """No reply within the call's time-out.

    The request may or may not have been applied. RabbitMQ drops it if it is still
    queued when the time-out passes (it was sent with that expiration); a worker may
    also have applied it and answered late. Retrying with the same ``message_id``
    is safe: the worker answers a replay with the first answer and never applies a
    mutation twice.
    """

    def __init__(self, message, message_id=None):
        super().__init__(message)
        self.message_id = message_id


class KvInvalidReplyError(WorkerUnavailableError):
    """A reply that is not what a worker sends (not JSON, or not a JSON object): another program answered
    on the operation's queue. ``queue`` names it."""

    def __init__(self, message, queue=None):
        super().__init__(message)
        self.queue = queue


class KvConnectionError(KeyValueStoreError):
    """RabbitMQ cannot be reached, refused the connection, or closed the connection or channel.

    ``reply_code`` is the broker's AMQP reply code when it closed something itself
    (403 for refused credentials, 406 for a ``user_id`` that is not the connection's user,
    530 for an unknown virtual host), else None. ``message_id`` is set when a request
    was under way: it may or may not have been applied; retry with that ``message_id``.
    """

    def __init__(self, message, reply_code=None, message_id=None):
        super().__init__(message)
        self.reply_code = reply_code
        self.message_id = message_id


# The worker's error codes and the classes they raise.
ERRORS = {cls.__name__: cls for cls in (
    KeyValueStoreError, NamespaceQuotaExceededError, GlobalQuotaExceededError, InvalidValueTypeError,
    ValueSerializationError, AccessDeniedError, StoreUnavailableError, VersionConflictError)}


def error_from_reply(error):
    """The exception for the ``"error"`` object of a reply."""
    code = error.get("code")
    message = error.get("message", "")
    cls = ERRORS.get(code, KeyValueStoreError)
    if cls is VersionConflictError:
        return cls(message, code, error.get("current_version"))
    return cls(message, code)
