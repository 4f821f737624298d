"""A synthetic encyclopedia: invented towns and people, one short article each, and
templated questions whose answers are written only in those articles.

No model knows these facts, so the only way to answer is to search. Everything is short, for
a byte-level model with 128 positions: names of 4-8 letters, one-sentence articles
(at most ~60 characters), questions of ~20-36 characters::

    Dovrek is a town in Quelmar, founded by Talsi in 1423.
    Talsi was a potter born in Brunak in 1388.

    Who founded Dovrek?           -> Talsi       (the search: "Dovrek")
    What was Talsi's job?         -> potter      (the search: "Talsi")

A town's founder is one of the world's people and a person's birthplace one of its towns, so
a name also appears in other articles; BM25 still ranks the entity's own article first (its
title repeats the name), and a test checks that for every entity.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

_ONSETS = ("b d f g k l m n p r s t v z br dr gr kr tr st sk th sh ch").split()
_VOWELS = ("a e i o u a e o").split()
_CODAS = ("", "", "", "n", "r", "l", "s", "k", "m", "th")
# English words BM25 drops (bm25s's list) must not be names.
_RESERVED = frozenset("into such that then there these they this will with were have from".split())

JOBS = ("baker", "painter", "sailor", "poet", "weaver", "miller", "potter", "farmer", "judge", "scribe", "smith", "hunter")

# Question templates per attribute; ``{e}`` is the entity, the answer is in its article.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "country": ("In which country is {e}?", "Which country is {e} in?"),
    "founder": ("Who founded {e}?", "Who was the founder of {e}?"),
    "founded": ("When was {e} founded?", "In what year was {e} founded?"),
    "job": ("What was {e}'s job?", "What did {e} work as?"),
    "birthplace": ("Where was {e} born?", "In which town was {e} born?"),
    "born": ("When was {e} born?", "In what year was {e} born?"),
}
TOWN_ATTRIBUTES = ("country", "founder", "founded")
PERSON_ATTRIBUTES = ("job", "birthplace", "born")


@dataclass(frozen=True)
class Fact:
    """One question's worth of the world: ``entity``'s ``attribute`` is ``answer``."""

    entity: str
    attribute: str
    answer: str


@dataclass(frozen=True)
class World:
    """Towns ``{name: (country, founder, year)}`` and people ``{name: (job, birthplace, year)}``."""

    towns: dict[str, tuple[str, str, str]]
    people: dict[str, tuple[str, str, str]]

    def article(self, name: str) -> str:
        if name in self.towns:
            country, founder, year = self.towns[name]
            return f"{name} is a town in {country}, founded by {founder} in {year}."
        job, birthplace, year = self.people[name]
        return f"{name} was a {job} born in {birthplace} in {year}."

    def passages(self) -> list[dict[str, str]]:
        """The corpus: one ``{"id", "title", "text"}`` article per entity."""
        names = [*self.towns, *self.people]
        return [{"id": f"synthetic:{i}", "title": n, "text": self.article(n)} for i, n in enumerate(names)]

    def facts(self) -> list[Fact]:
        out = []
        for name, values in self.towns.items():
            out += [Fact(name, a, v) for a, v in zip(TOWN_ATTRIBUTES, values)]
        for name, values in self.people.items():
            out += [Fact(name, a, v) for a, v in zip(PERSON_ATTRIBUTES, values)]
        return out

    def answers_for(self, attribute: str) -> list[str]:
        """Every value ``attribute`` takes in this world: what a guess draws from."""
        column = {a: i for i, a in enumerate(TOWN_ATTRIBUTES)} | {a: i for i, a in enumerate(PERSON_ATTRIBUTES)}
        table = self.towns if attribute in TOWN_ATTRIBUTES else self.people
        return sorted({v[column[attribute]] for v in table.values()})


def _name(rng: random.Random, taken: set[str]) -> str:
    while True:
        syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.choice((2, 2, 3)))]
        name = ("".join(syllables) + rng.choice(_CODAS)).capitalize()
        if 4 <= len(name) <= 8 and name.lower() not in taken and name.lower() not in _RESERVED:
            taken.add(name.lower())
            return name


def make_world(num_towns: int, num_people: int, num_countries: int, seed: int) -> World:
    """A world fixed by its sizes and ``seed``. Every person founded at most one town."""
    if min(num_towns, num_people, num_countries) < 1:
        raise ValueError("a world needs at least one town, one person and one country")
    if num_people < num_towns:
        raise ValueError(f"every town needs its own founder: num_people ({num_people}) < num_towns ({num_towns})")
    rng = random.Random(seed)
    taken: set[str] = set()
    countries = [_name(rng, taken) for _ in range(num_countries)]
    town_names = [_name(rng, taken) for _ in range(num_towns)]
    person_names = [_name(rng, taken) for _ in range(num_people)]
    founders = rng.sample(person_names, num_towns)
    towns = {t: (rng.choice(countries), f, str(rng.randint(1000, 1899))) for t, f in zip(town_names, founders)}
    people = {p: (rng.choice(JOBS), rng.choice(town_names), str(rng.randint(1000, 1899))) for p in person_names}
    return World(towns=towns, people=people)


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
