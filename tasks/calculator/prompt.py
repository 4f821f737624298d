"""The calculator's prompt: the question, after the seed's 4-shot prompt for hub models."""

from __future__ import annotations

# The seed's 4-shot prompt (TRL calculator example), for hub models.
FEW_SHOT = """\
What is 13.1-3?

<request><{tool}>13.1-3<call>10.1<response>

Result=10.1<submit>

What is 4*3?

<request><{tool}>4*3<call>12<response>

Result=12<submit>

What is 12.1+1?

<request><{tool}>12.1+1<call>13.1<response>

Result=13.1<submit>

What is 12.1-20?

<request><{tool}>12.1-20<call>-7.9<response>

Result=-7.9<submit>

"""


def prompt(question: str, tool_name: str, few_shot: bool) -> str:
    prefix = FEW_SHOT.format(tool=tool_name) if few_shot else ""
    return f"{prefix}{question}\n\n"
