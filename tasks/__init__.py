"""Tasks, one package each: data, prompt, tools, reward, demonstrations, and the task itself.

``TASKS`` is the registry the orchestrator reads (orchestrator/task/registry.py); adding a
task means its package, its conf/task/<name>.yaml, and one line here.
"""

from tasks.calculator import CalculatorTask
from tasks.gsm8k import GSM8KTask
from tasks.triviaqa import SyntheticTriviaQATask, TriviaQATask

TASKS = {
    "calculator": CalculatorTask,
    "gsm8k": GSM8KTask,
    "triviaqa": TriviaQATask,
    "triviaqa_synthetic": SyntheticTriviaQATask,
}
