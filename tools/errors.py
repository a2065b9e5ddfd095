"""Error kinds shared by every layer; each message is one line that says what to do."""


class AnomalyChatError(Exception):
    """Base of the project's own errors."""


class InputError(AnomalyChatError, ValueError):
    """The user's input (a file, a name, a setting, a rule) is not acceptable. CLI exit code 2."""


class NotFoundError(InputError):
    """A class, rule or reference that the user named does not exist."""


class BackendError(AnomalyChatError):
    """A model backend failed after its retries (HTTP error, timeout, bad reply). CLI exit code 1."""


class ConfigError(InputError):
    """Misconfiguration the user can fix: a missing key, a bad base URL, an unknown backend."""
