"""Errors the library raises on purpose. Each carries its exit code and a one-line message that
says what to fix; the CLI prints the message and exits with the code, never a traceback."""

from __future__ import annotations

from .exit_codes import ExitCode


class CacheopsError(Exception):
    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConnectionFailed(CacheopsError):
    exit_code = ExitCode.CONNECTION


class AuthFailed(CacheopsError):
    exit_code = ExitCode.AUTH


class PermissionDenied(CacheopsError):
    exit_code = ExitCode.PERMISSION


class EventsDisabled(CacheopsError):
    """The server does not publish the keyspace events `hits --follow` needs."""

    exit_code = ExitCode.EVENTS_DISABLED


class MissingModule(CacheopsError):
    exit_code = ExitCode.MISSING_MODULE


class NotFound(CacheopsError):
    exit_code = ExitCode.NOT_FOUND


class ConfigError(CacheopsError):
    exit_code = ExitCode.CONFIG


class EmbeddedUnavailable(CacheopsError):
    exit_code = ExitCode.EMBEDDED_UNAVAILABLE


class UsageError(CacheopsError):
    exit_code = ExitCode.USAGE


class ModelUnavailable(CacheopsError):
    exit_code = ExitCode.MODEL_UNAVAILABLE


class TargetConflict(CacheopsError):
    exit_code = ExitCode.TARGET_CONFLICT


class NotRedis(CacheopsError):
    exit_code = ExitCode.NOT_REDIS


class NoSuchDatabase(CacheopsError):
    exit_code = ExitCode.NO_SUCH_DATABASE


class NotOnCluster(CacheopsError):
    exit_code = ExitCode.NOT_ON_CLUSTER


class TopologyChanged(CacheopsError):
    """The cluster changed under a scan in a way it cannot follow exactly (a migration on a shard too big
    to remember what was listed): it stops instead of listing an entry twice or not at all."""

    exit_code = ExitCode.TOPOLOGY_CHANGED
