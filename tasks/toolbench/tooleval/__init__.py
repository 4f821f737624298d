"""ToolEval you can trust: ToolBench's pass and win rates and StableToolBench's SoPR, with
every coin flip seeded and counted, judges that are cached, replayable or deterministic.

    python -m tasks.toolbench.tooleval sopr --answers DIR --judge rules
    python -m tasks.toolbench.tooleval pass-rate --answers DIR --judge openai --base-url URL --cache C.jsonl

Modules: records (what is judged), converted / from_trees / inputs (answer formats),
judges/ (the judge interface and its four kinds), pass_rate (ToolEval's pass rate, SoPR),
win_rate (with the order swap done right), report (tables, W&B metrics), evaluate (one call
per evaluation). See docs/toolbench.md, "## ToolEval".
"""

from tasks.toolbench.tooleval.evaluate import EvalReport, evaluate_pass, evaluate_win
from tasks.toolbench.tooleval.inputs import load_answers
from tasks.toolbench.tooleval.judges import build_judge
from tasks.toolbench.tooleval.records import AnswerPass, AnswerStatus, EvalAnswer, TaskStatus

__all__ = ["AnswerPass", "AnswerStatus", "EvalAnswer", "EvalReport", "TaskStatus", "build_judge",
           "evaluate_pass", "evaluate_win", "load_answers"]
