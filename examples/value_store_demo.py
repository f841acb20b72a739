"""A day in the life of one agent's values: eat, get hammered with requests, rest.

Prints, step by step, what the agent has had (stocks), what it wants most (wanting = effective
weight x marginal utility), its mood, stress and decision temperature. Watch the apple's wanting
fall as it eats apples (diminishing returns), variety win, stress raise the weight of rest, and
rest bring stress down.

Run: ``python examples/value_store_demo.py``
"""

from __future__ import annotations

import numpy as np

from valuegym.values import ValueProfile, ValueStore

PROFILE = {
    "values": {
        "apple": {"weight": 1.0, "curve": "log", "satiation_half_life": 6.0},
        "pear": {"weight": 0.8, "curve": "isoelastic", "eta": 1.5, "satiation_half_life": 6.0},
        "company": {"weight": 0.9, "curve": "saturating", "scale": 2.0, "stress_weight": -1.0},
        "rest": {"weight": 0.4, "curve": "saturating", "scale": 2.0, "stress_weight": 2.0},
    },
    "affect": {"stress_baseline": 0.1, "stress_sensitivity": 0.4, "rest_recovery": 0.8},
}

#: (what happens, consumption by value name, load, rest)
DAY = [
    ("eats an apple", {"apple": 1.0}, 0.0, 0.0),
    ("eats an apple", {"apple": 1.0}, 0.0, 0.0),
    ("eats an apple", {"apple": 1.0}, 0.0, 0.0),
    ("eats a pear", {"pear": 1.0}, 0.0, 0.0),
    ("gets 20 identical questions", {}, 2.0, 0.0),
    ("gets 20 identical questions", {}, 2.0, 0.0),
    ("gets 20 identical questions", {}, 2.0, 0.0),
    ("chats with a friend", {"company": 1.0}, 0.0, 0.0),
    ("rests", {"rest": 1.0}, 0.0, 1.0),
    ("rests", {"rest": 1.0}, 0.0, 1.0),
    ("idles", {}, 0.0, 0.0),
]


def main() -> None:
    """Run the day and print the agent's value state after each event."""
    store = ValueStore.from_profile(ValueProfile.from_mapping(PROFILE))
    names = store.value_names
    header = " ".join(f"{name:>8}" for name in names)
    print(f"{'event':<28} {'gain':>6}  wanting: {header}  {'mood':>6} {'stress':>6} {'temp':>5}")
    for event, consumed, load, rest in DAY:
        consumption = np.array([[consumed.get(name, 0.0) for name in names]])
        outcome = store.step(consumption, load=[load], rest=[rest])
        snap = store.snapshot(0)
        wanting = " ".join(f"{snap.wanting[name]:>8.3f}" for name in names)
        print(
            f"{event:<28} {outcome.utility_gain[0]:>6.3f}           {wanting}  "
            f"{snap.mood:>6.2f} {snap.stress:>6.2f} {snap.temperature:>5.2f}"
            f"   wants {snap.most_wanted}"
        )


if __name__ == "__main__":
    main()
