"""The search tasks' prompt: the question, after two shots in the protocol for hub models."""

from __future__ import annotations

# Two shots in the protocol for hub models: true facts, passages as the tool returns them.
FEW_SHOT = """\
Which country is Mount Kilimanjaro in?

<request><{tool}>Mount Kilimanjaro<call>Mount Kilimanjaro is a dormant volcano in Tanzania. It is the highest mountain in Africa.<response>

Result=Tanzania<submit>

Who wrote the novel Nineteen Eighty-Four?

<request><{tool}>Nineteen Eighty-Four novel<call>Nineteen Eighty-Four is a dystopian novel by the English writer George Orwell, published in 1949.<response>

Result=George Orwell<submit>

"""


def prompt(question: str, tool_name: str, few_shot: bool) -> str:
    prefix = FEW_SHOT.format(tool=tool_name) if few_shot else ""
    return f"{prefix}{question}\n\n"
