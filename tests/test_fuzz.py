"""Every decoder a peer's bytes reach, fuzzed (``tests/fuzz.py``): a seeded, time-boxed run of
110,000 inputs inside the suite (``make fuzz`` runs a million). A refusal must be a TorvError
saying why; nothing may crash."""

from __future__ import annotations

from .fuzz import run

INPUTS = 110_000
SEED = 20261206


def test_no_decoder_crashes_on_a_hundred_thousand_hostile_inputs() -> None:
    results = run(INPUTS, SEED, seconds=240)
    crashes = [c for o in results.values() for c in (o.crashes or [])]
    assert not crashes, crashes[:5]
    assert sum(o.inputs for o in results.values()) >= 100_000
    assert all(o.refused > 0 for o in results.values())  # every target reached its checks
