"""Models: the tiny offline model, hub models, and the policy with a value head."""

from orchestrator.models.policy import PolicyWithValue
from orchestrator.models.tokens import add_protocol_tokens

__all__ = ["PolicyWithValue", "add_protocol_tokens"]
