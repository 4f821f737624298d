"""Question answering with a search tool: real TriviaQA (real.py) and an invented encyclopedia
(synthetic.py), sharing search_task.py. answers.py: TriviaQA's normalisation and the reward;
loaders.py: hub and local data; world.py: the invented encyclopedia. See docs/triviaqa.md.
"""

from tasks.triviaqa.answers import answer_reward, answer_score, extract_answer, normalize_answer
from tasks.triviaqa.prompt import FEW_SHOT
from tasks.triviaqa.real import TriviaQASpec, TriviaQATask
from tasks.triviaqa.synthetic import SyntheticSpec, SyntheticTriviaQATask
from tasks.triviaqa.world import World, make_world

__all__ = ["FEW_SHOT", "SyntheticSpec", "SyntheticTriviaQATask", "TriviaQASpec", "TriviaQATask", "World",
           "answer_reward", "answer_score", "extract_answer", "make_world", "normalize_answer"]
