"""Outcome-carrying exceptions shared by every stage.

Only the edges (daemon/cli/, daemon/runners/listener.py) translate them, through the one
table in daemon/errors.py, into exit codes and SMTP replies; everything below raises the
one that says what happened.
"""


class PostdeskError(Exception):
    """Base of every error postdesk raises on purpose."""


class TemporaryFailure(PostdeskError):
    """Try again later: the database or disk is unavailable."""


class BadData(PostdeskError):
    """The input cannot be processed: malformed mail, unreadable file."""


class ConfigError(PostdeskError):
    """Configuration, rules or templates are invalid; the message names file and line."""
