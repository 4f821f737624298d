"""A synthetic encyclopedia: invented towns, people, peaks and rivers, one short article
each, and templated questions whose answers are written only in those articles.

No model knows these facts, so the only way to answer is to search. Everything is sized for a
byte-level model with 128 positions (one character, one token)::

    SEBRA is a town in CHODU.              In which country is SEBRA?               -> CHODU
    KRODA was born in GUPE.                What is the birthplace of KRODA?         -> GUPE
    BEKAS is a peak in the range DOLUN.    In which range is the peak BEKAS?        -> DOLUN
    THAVU is a river flowing to ROSKE.     Into which sea flows the THAVU?          -> ROSKE

The search that works is the entity's name (BM25 ranks its own article first: the title
repeats the name; a test checks it for every entity). The shape is chosen for what a
450k-parameter, 2-layer model can learn in minutes on a CPU, where copying a word means
"find the letter I just wrote, write the one after it":

- the name ends the question and the answer ends the article, so both the query and the
  answer are a copy of the word before a punctuation mark (as the calculator's are);
- names are capitals of 4-5 distinct letters (no I, W, F: the questions start with those), so
  an upper-case letter in context belongs to a name and a copy never meets a repeated letter;
  every answer is a name (years were dropped: with capital names the warm-started model copied
  names but no year, 0 of 57);
- an answer shares no letter with its entity's name where the world allows it (the copy of
  SKEROM after KULEM became SKEMOM: the E of KULEM is followed by M).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Bumped whenever the generator changes what a (size, seed) world is: part of cache keys.
WORLD_VERSION = 4

# Names are written in capitals from letters the questions do not start with (I, W, F), so an
# upper-case letter in context is always part of a name.
_ONSETS = "b d g k l m n p r s t v z br dr gr kr tr st sk th sh ch".split()
_VOWELS = "a e o u".split()
_CODAS = ("", "", "", "n", "r", "l", "s", "k", "m")
# English words BM25 drops (bm25s's list) must not be names.
_RESERVED = frozenset("into such that then there these they this will with were have from".split())


@dataclass(frozen=True)
class Kind:
    """An entity kind: its one fact, the article that states it, the questions that ask it."""

    attribute: str
    article: str
    questions: tuple[str, ...]
    share: float


# ``{e}``: the entity (it ends every question), ``{a}``: the answer (it ends every article).
KINDS: dict[str, Kind] = {
    "town": Kind("country", "{e} is a town in {a}.",
                 ("In which country is {e}?", "Which country is home to {e}?"), 0.3),
    "person": Kind("birthplace", "{e} was born in {a}.",
                   ("What is the birthplace of {e}?", "Which town is the birthplace of {e}?"), 0.3),
    "peak": Kind("range", "{e} is a peak in the range {a}.",
                 ("In which range is the peak {e}?", "Which mountain range holds {e}?"), 0.2),
    "river": Kind("sea", "{e} is a river flowing to {a}.",
                  ("Into which sea flows the {e}?", "Which sea is fed by the river {e}?"), 0.2),
}
QUESTIONS = {k.attribute: k.questions for k in KINDS.values()}


@dataclass(frozen=True)
class Fact:
    """One question's worth of the world: ``entity``'s ``attribute`` is ``answer``."""

    entity: str
    attribute: str
    answer: str


@dataclass(frozen=True)
class World:
    """``entities[name] = (kind, answer)``, in the order they were made."""

    entities: dict[str, tuple[str, str]]

    def article(self, name: str) -> str:
        kind, answer = self.entities[name]
        return KINDS[kind].article.format(e=name, a=answer)

    def passages(self) -> list[dict[str, str]]:
        """The corpus: one ``{"id", "title", "text"}`` article per entity."""
        return [{"id": f"synthetic:{i}", "title": n, "text": self.article(n)} for i, n in enumerate(self.entities)]

    def facts(self) -> list[Fact]:
        return [Fact(n, KINDS[k].attribute, a) for n, (k, a) in self.entities.items()]

    def answers_for(self, attribute: str) -> list[str]:
        """Every value ``attribute`` takes in this world: what a guess draws from."""
        return sorted({a for k, a in self.entities.values() if KINDS[k].attribute == attribute})


def _name(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(2)) + rng.choice(_CODAS)
        if 4 <= len(name) <= 5 and len(set(name)) == len(name) and name not in taken and name not in _RESERVED:
            taken.add(name)
            return name.upper()


def _unlike(name: str, candidates: list[str], rng: random.Random) -> str:
    """A candidate sharing no letter with ``name`` (the fewest shared when none is free)."""
    overlap = [len(set(name) & set(c)) for c in candidates]
    best = min(overlap)
    return rng.choice([c for c, o in zip(candidates, overlap) if o == best])


def make_world(size: int, seed: int, num_countries: int = 40, num_seas: int = 30, num_ranges: int = 30) -> World:
    """``size`` entities, split over the kinds by their shares; fixed by ``seed``."""
    if size < len(KINDS):
        raise ValueError(f"a world needs at least one entity of each kind ({len(KINDS)}), got size={size}")
    rng = random.Random(seed)
    taken: set[str] = set()
    countries = [_name(rng, taken) for _ in range(num_countries)]
    seas = [_name(rng, taken) for _ in range(num_seas)]
    ranges = [_name(rng, taken) for _ in range(num_ranges)]
    counts = {k: max(1, round(size * kind.share)) for k, kind in KINDS.items()}
    names = {k: [_name(rng, taken) for _ in range(n)] for k, n in counts.items()}
    some_towns = names["town"]
    answers = {
        "town": lambda e: _unlike(e, countries, rng),
        "person": lambda e: _unlike(e, rng.sample(some_towns, min(60, len(some_towns))), rng),
        "peak": lambda e: _unlike(e, ranges, rng),
        "river": lambda e: _unlike(e, seas, rng),
    }
    entities = {n: (k, answers[k](n)) for k in KINDS for n in names[k]}
    order = list(entities)
    rng.shuffle(order)
    return World(entities={n: entities[n] for n in order})


def write_corpus(world: World, path: Path) -> Path:
    """Write the world's articles as JSONL at ``path`` unless it is there already (the search
    index is rebuilt when its corpus file changes, so an existing file is never rewritten)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for row in world.passages():
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, path)  # atomic: a concurrent writer of the same world writes the same bytes
    return path
