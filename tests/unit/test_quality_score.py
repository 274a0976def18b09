"""Pairwise scoring against ground truth, on a hand-made example."""

from __future__ import annotations

from cdp_tools.quality.score import score

OWNERS = {
    "crm_id:A": {1},
    "email:a@x.com": {1},
    "ecid:a1": {1},
    "crm_id:B": {2},
    "email:b@x.com": {2},
    "device_id:tablet": {1, 2},  # shared: not scored
}


def test_pairwise_precision_recall_and_wrong_pair_kinds() -> None:
    # A's cookie sits with B (one wrong person), the shared tablet with B.
    profiles = [
        ["crm_id:A", "email:a@x.com"],
        ["crm_id:B", "email:b@x.com", "ecid:a1", "device_id:tablet"],
    ]
    s = score(profiles, OWNERS)
    # Predicted pairs: A-a@x (true); B-b@x (true), B-a1, b@x-a1 (wrong): 2 of 4.
    assert s.precision == 0.5
    # True pairs: A-a@x, A-a1, a@x-a1 (person 1); B-b@x (person 2): 2 of 4 found.
    assert s.recall == 0.5
    assert s.wrong_pairs == {"crm_id+ecid": 1, "ecid+email": 1}
    assert (s.largest_graph, s.profiles, s.people, s.split_people) == (4, 2, 2, 1)
    assert s.profiles_per_person == 1.5 and s.unscored == 1


def test_one_profile_per_person_is_perfect() -> None:
    s = score([["crm_id:A", "email:a@x.com", "ecid:a1"], ["crm_id:B", "email:b@x.com"]], OWNERS)
    assert (s.precision, s.recall, s.split_people) == (1.0, 1.0, 0)
