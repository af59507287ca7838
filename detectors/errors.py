"""The one root exception of the detectors package and its few subclasses."""


class DetectorError(Exception):
    """Root of every error raised by the detectors package."""


class InvalidEvent(DetectorError):
    """A record that cannot become a canonical parcel event.

    ``reason`` is a short code from a closed set (safe as a metric label); ``detail`` says
    precisely what is wrong, for the dead-letter record and the analyst reading it.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ConfigError(DetectorError):
    """A rules or reference-data file that cannot be used; the message says where and why."""


class StoreError(DetectorError):
    """The window store could not apply a batch (server unreachable, script failure)."""


class FeedbackError(DetectorError):
    """An analyst's decision that cannot be recorded; the message says why."""


class AlertNotFound(FeedbackError):
    """No alert with that id in the alert store."""
