"""Pairwise scoring of profiles against ground truth.

Only identities with exactly one owner are scored (a shared tablet, a kiosk or a
placeholder email belongs to no one person). A pair is two such identities: predicted
when one profile holds both, true when one person owns both. Precision is the share of
predicted pairs that are true, recall the share of true pairs that are predicted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from math import comb


@dataclass
class Score:
    precision: float
    recall: float
    largest_graph: int
    profiles: int
    people: int
    profiles_per_person: float  # mean number of profiles a person's identities are in
    split_people: int  # people whose identities are in more than one profile
    wrong_pairs: Counter[str] = field(default_factory=Counter)  # "ns_a+ns_b" -> count
    unscored: int = 0  # identities in profiles without exactly one known owner


def score(profiles: Iterable[list[str]], owners: Mapping[str, set[int]]) -> Score:
    """``profiles``: the identity keys ('namespace:value') of each profile."""
    predicted = correct = largest = count = unscored = 0
    wrong: Counter[str] = Counter()
    per_person: Counter[int] = Counter()
    profiles_of: dict[int, set[int]] = {}
    for number, keys in enumerate(profiles):
        count += 1
        largest = max(largest, len(keys))
        scored = [(k, next(iter(owners[k]))) for k in keys if len(owners.get(k, ())) == 1]
        unscored += len(keys) - len(scored)
        by_owner = Counter(owner for _, owner in scored)
        predicted += comb(len(scored), 2)
        correct += sum(comb(n, 2) for n in by_owner.values())
        per_person.update(by_owner)
        for owner in by_owner:
            profiles_of.setdefault(owner, set()).add(number)
        if len(by_owner) > 1:
            for (a, oa), (b, ob) in combinations(scored, 2):
                if oa != ob:
                    wrong["+".join(sorted((a.split(":")[0], b.split(":")[0])))] += 1
    true = sum(comb(n, 2) for n in per_person.values())
    spread = [len(p) for p in profiles_of.values()]
    return Score(
        precision=correct / predicted if predicted else 1.0,
        recall=correct / true if true else 1.0,
        largest_graph=largest,
        profiles=count,
        people=len(profiles_of),
        profiles_per_person=sum(spread) / len(spread) if spread else 0.0,
        split_people=sum(1 for n in spread if n > 1),
        wrong_pairs=wrong,
        unscored=unscored,
    )


def report(s: Score) -> str:
    lines = [
        f"pairwise precision : {s.precision:.4f}",
        f"pairwise recall    : {s.recall:.4f}",
        f"largest graph      : {s.largest_graph}",
        f"profiles           : {s.profiles} for {s.people} people "
        f"({s.profiles_per_person:.3f} profiles per person, {s.split_people} people split)",
        f"unscored identities: {s.unscored} (shared or placeholder: several owners)",
        "wrong pairs by kind: "
        + (", ".join(f"{k} {n}" for k, n in s.wrong_pairs.most_common()) or "none"),
    ]
    return "\n".join(lines)
