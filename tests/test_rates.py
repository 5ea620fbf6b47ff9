"""The store-update rate rule (protocol/rates.py), driven by an explicit clock."""

from __future__ import annotations

from protocol.rates import STORE_BURST, STORE_REFILL_S, StoreRates, TokenBucket


def test_a_bucket_allows_its_burst_then_one_per_refill() -> None:
    bucket = TokenBucket()
    assert all(bucket.take(100.0) for _ in range(int(STORE_BURST)))
    assert not bucket.take(100.0)
    assert bucket.wait(100.0) == STORE_REFILL_S
    assert not bucket.take(100.0 + STORE_REFILL_S / 2)
    assert bucket.take(100.0 + STORE_REFILL_S)
    assert not bucket.take(100.0 + STORE_REFILL_S)


def test_a_bucket_refills_to_its_capacity_and_no_further() -> None:
    bucket = TokenBucket(capacity=3, refill_s=1.0)
    for _ in range(3):
        assert bucket.take(0.0)
    assert bucket.wait(0.0) == 1.0
    assert bucket.full(1000.0)
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]


def test_a_clock_that_goes_backwards_gives_nothing_extra() -> None:
    bucket = TokenBucket(capacity=2, refill_s=1.0)
    assert bucket.take(10.0) and bucket.take(10.0)
    assert not bucket.take(5.0)  # an earlier time: no refill
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


def test_store_rates_are_per_vendor_and_kind() -> None:
    rates = StoreRates()
    burst = int(STORE_BURST)
    assert all(rates.allow("A", "manifest", 0.0) for _ in range(burst))
    assert not rates.allow("A", "manifest", 0.0)
    assert rates.allow("A", "profile", 0.0)  # another kind: its own bucket
    assert rates.allow("B", "manifest", 0.0)  # another vendor too


def test_store_rates_hold_a_bounded_number_of_buckets() -> None:
    rates = StoreRates(max_buckets=100)
    for i in range(1000):
        rates.allow(f"V{i}", "manifest", 0.0)
    assert len(rates) == 100


def test_a_publisher_pacing_itself_never_trips_a_receiver_despite_jitter() -> None:
    import random

    from protocol.rates import PUBLISH_BURST, PUBLISH_REFILL_S

    rng = random.Random(7)
    for _ in range(50):
        sender = TokenBucket(PUBLISH_BURST, PUBLISH_REFILL_S)
        receiver = StoreRates()
        t = 0.0
        for _ in range(200):  # flat out: each send as soon as the sender's bucket allows
            t += sender.wait(t)
            assert sender.take(t)
            arrival = t + rng.uniform(0.0, 0.2)  # up to 200 ms of jitter per message
            assert receiver.allow("V", "manifest", arrival)
