"""Policy edges: Retry-After from any retryable error; compaction drops old notes."""

from __future__ import annotations

import random

from tether.core import RateLimitError, TransientModelError
from tether.net import HttpRetryLaterError
from tether.runtime import RetryPolicy


def test_a_tools_retry_after_is_waited() -> None:
    policy = RetryPolicy(max_delay_s=30.0)
    busy = HttpRetryLaterError("503 from the API", status_code=503, retry_after=7.0)
    assert policy.delay(1, busy, random.Random(0)) == 7.0
    assert policy.delay(1, RateLimitError("slow down", retry_after=2.5), random.Random(0)) == 2.5
    # capped, and never negative
    assert policy.delay(1, HttpRetryLaterError("x", status_code=429, retry_after=900),
                        random.Random(0)) == 30.0
    assert policy.delay(1, HttpRetryLaterError("x", status_code=429, retry_after=-5),
                        random.Random(0)) == 0.0
    # without a Retry-After: jittered backoff within the ceiling
    assert 0.0 <= policy.delay(2, TransientModelError("x"), random.Random(0)) <= 1.0


def test_compaction_drops_the_notes_of_earlier_compactions() -> None:
    from tether.runtime._compaction import droppable_range

    # system, task, an earlier compaction's note, then four turns
    roles = ["system", "user", "user", "assistant", "tool", "assistant", "tool",
             "assistant", "tool", "assistant"]
    start, end = droppable_range(roles) or (0, 0)
    assert (start, end) == (2, 7)  # the old note goes with the oldest turns
    assert droppable_range(["user", "assistant", "tool", "assistant"]) == (1, 3)
    assert droppable_range(["system", "user", "assistant"]) is None
