"""The prompt texts ToolBench's inference shows the model, reproduced word for word.

A model fine-tuned on ToolBench's answer trees saw exactly these strings (typos included),
so inference must show them unchanged. Source: OpenBMB/ToolBench @d56fdd8,
``toolbench/inference/Prompts/ReAct_prompts.py`` (system and user messages),
``Prompts/Tree_search_prompts.py`` (the diversity prompt) and
``Downstream_tasks/rapidapi.py`` (the task description and the tool list).
"""

from __future__ import annotations

SYSTEM_PROMPT = """You are AutoGPT, you can use many tools(functions) to do the following task.
First I will give you the task description, and your task start.
At each step, you need to give your thought to analyze the status now and what to do next, with a function call to actually excute your step.
After the call, you will get the call result, and you are now in a new state.
Then you will analyze your status now, then decide what to do next...
After many (Thought-call) pairs, you finally perform the task, then you can give your finial answer.
Remember: 
1.the state change is irreversible, you can't go back to one of the former state, if you want to restart the task, say "I give up and restart".
2.All the thought is short, at most in 5 sentence.
3.You can do more then one trys, so if your plan is to continusly try some conditions, you can do one of the conditions per try.
Let's Begin!
Task description: {task_description}"""

USER_PROMPT = """
{input_description}
Begin!
"""

TASK_DESCRIPTION = """You should use functions to help handle the real time user querys. Remember:
1.ALWAYS call \"Finish\" function at the end of the task. And the final answer should contain enough information to show to the user,If you can't handle the task, or you find that function calls always fail(the function is not valid now), use function Finish->give_up_and_restart.
2.Do not use origin tool names, use only subfunctions' names.
You have access of the following tools:\n"""

DIVERSITY_PROMPT = """This is not the first time you try this task, all previous trails failed.
Before you generate my thought for this state, I will first show you your previous actions for this state, and then you must generate actions that is different from all of them. Here are some previous actions candidates:
{previous_candidate}
Remember you are now in the intermediate state of a trail, you will first analyze the now state and previous action candidates, then make actions that is different from all the previous."""


def task_description(tools: list[tuple[str, str]]) -> str:
    """The task description with the numbered tool list: ``tools`` holds (standard tool
    name, tool description) pairs; duplicates keep their first position, descriptions are
    cut at 512 characters with newlines removed, an empty one reads ``None``."""
    unique: dict[str, str] = {}
    for name, description in tools:
        unique[name] = description  # ToolBench's dict: the last description wins, first position stays
    text = TASK_DESCRIPTION
    for k, (name, description) in enumerate(unique.items()):
        striped = (description or "")[:512].replace("\n", "").strip() or "None"
        text += f"{k + 1}.{name}: {striped}\n"
    return text


def initial_messages(task_desc: str, query: str) -> list[dict[str, str]]:
    """The system and user messages every search starts from."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT.replace("{task_description}", task_desc)},
        {"role": "user", "content": USER_PROMPT.replace("{input_description}", query)},
    ]
