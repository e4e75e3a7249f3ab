"""Who may use the relay: robots by token, users by token with the robots they may use."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from havatar_common.auth import token_matches


@dataclass
class Accounts:
    """Who may connect: robots by token, users by token with the robots they may use."""

    robots: dict[str, str] = field(default_factory=dict)              # robot id -> token
    users: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # name -> (token, robots or ['*'])
    recorders: set[str] = field(default_factory=set)  # users who may start and stop recordings

    def robot(self, robot_id: str, token: str) -> bool:
        expected = self.robots.get(robot_id)
        return expected is not None and token_matches(token, expected)

    def known_user(self, token: str) -> Optional[str]:
        return next((name for name, (expected, _) in self.users.items()
                     if token_matches(token, expected)), None)

    def user(self, token: str, robot_id: str) -> Optional[str]:
        """The user's name if ``token`` is theirs and they may use ``robot_id``."""
        for name, (expected, robots) in self.users.items():
            if token_matches(token, expected):
                return name if ('*' in robots or robot_id in robots) else None
        return None

    def may_record(self, token: str, robot_id: str) -> bool:
        """Whether ``token``'s user may start and stop recordings of ``robot_id``."""
        return self.user(token, robot_id) in self.recorders
