"""GSM8K's prompt: ``Q: <question>``, after two worked examples for hub models."""

from __future__ import annotations

# Two worked examples in the protocol, for hub models (the tool's answer is exactly what
# the program prints; tests/test_gsm8k.py runs them in the sandbox).
FEW_SHOT = """\
Q: A baker made 36 muffins. She sold 2/3 of them in the morning and gave 5 of the rest to a neighbour. How many muffins does she have left?

<request><{tool}>
muffins = 36
sold = muffins * 2 // 3
left = muffins - sold - 5
print(left)
<call>7
<response>

Result=7<submit>

Q: Tom buys 3 notebooks at $4.50 each and a pen for $2. He pays with a $20 bill. How much change does he get?

<request><{tool}>
notebooks = 3 * 4.50
total = notebooks + 2
change = 20 - total
print(change)
<call>4.5
<response>

Result=4.5<submit>

"""


def question_prompt(question: str) -> str:
    return f"Q: {question}\n\n"




def prompt(question: str, tool_name: str, few_shot: bool) -> str:
    prefix = FEW_SHOT.format(tool=tool_name) if few_shot else ""
    return prefix + question_prompt(question)
