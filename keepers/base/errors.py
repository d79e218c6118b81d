"""The one base exception of the keepers package.

Every failure a user can fix (bad config, wrong network, missing account, a feed that
fails its checks) raises a ``SentinelError`` whose message is one line naming the field
and the fix; scripts turn it into a ``click.ClickException`` (no traceback).
"""


class SentinelError(Exception):
    """A problem the user can fix; the message says what and how."""
