"""TriviaQA with a Wikipedia search tool, and a synthetic encyclopedia a CPU can learn from.

``tasks.triviaqa.TriviaQATask`` (task.py): data, prompt, tools, reward, demonstrations.
answers.py: TriviaQA's normalisation and the reward; loaders.py: hub and local data;
world.py: the invented encyclopedia. See docs/triviaqa.md.
"""

from tasks.triviaqa.answers import answer_reward, answer_score, extract_answer, normalize_answer
from tasks.triviaqa.task import FEW_SHOT, TriviaQATask
from tasks.triviaqa.world import World, make_world

__all__ = ["FEW_SHOT", "TriviaQATask", "World", "answer_reward", "answer_score", "extract_answer",
           "make_world", "normalize_answer"]
