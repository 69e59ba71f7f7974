"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class GanBenchError(Exception):
    """A problem the user can fix (bad config, missing data, ...). Message says what and how."""


class ConfigError(GanBenchError):
    """The configuration is invalid."""


class DataError(GanBenchError):
    """A data set is missing, corrupt or cannot be downloaded."""
