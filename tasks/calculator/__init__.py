"""Calculator: data, prompt, tools, reward, demonstrations (one module each), and the task."""

from tasks.calculator.reward import exact_match_reward
from tasks.calculator.task import CalculatorSpec, CalculatorTask

__all__ = ["CalculatorSpec", "CalculatorTask", "exact_match_reward"]
