"""Tasks, one package each: data, prompt, tools, reward, demonstrations, and the task itself.

``TASKS`` is the registry the orchestrator reads (orchestrator/task/registry.py); adding a
task means its package, its conf/task/<name>.yaml, and one line here.
"""

from tasks.calculator import CalculatorTask
from tasks.gsm8k import GSM8KTask
from tasks.toolbench.task import InferSpec, ToolBenchTask
from tasks.triviaqa import SyntheticTriviaQATask, TriviaQATask

TASKS = {
    "calculator": CalculatorTask,
    "gsm8k": GSM8KTask,
    "toolbench": ToolBenchTask,
    "triviaqa": TriviaQATask,
    "triviaqa_synthetic": SyntheticTriviaQATask,
}

# Schemas of config groups a task brings (conf/<group>/<option>.yaml): ToolBench's search settings.
GROUP_SCHEMAS = {"infer": {"dfsdt": InferSpec, "react": InferSpec}}
