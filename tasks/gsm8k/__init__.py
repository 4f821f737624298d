"""GSM8K with a sandboxed Python interpreter: data, programs, prompt, tools, reward, demonstrations."""

from tasks.gsm8k.data import load_hub, make_problem, parse_answer, read_jsonl
from tasks.gsm8k.programs import annotation_program, annotations, run_arithmetic
from tasks.gsm8k.prompt import FEW_SHOT, question_prompt
from tasks.gsm8k.reward import RESULT_RE, result_reward
from tasks.gsm8k.task import GSM8KSpec, GSM8KTask

__all__ = ["FEW_SHOT", "GSM8KSpec", "GSM8KTask", "RESULT_RE", "annotation_program", "annotations", "load_hub",
           "make_problem", "parse_answer", "question_prompt", "read_jsonl", "result_reward", "run_arithmetic"]
