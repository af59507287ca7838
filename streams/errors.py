"""The one root exception of the streams package."""


class StreamsError(Exception):
    """Root of every error raised by the streams package; the message says what to do."""


class ServerStartError(StreamsError):
    """A local server (redis-server, Tansu) could not be started."""
