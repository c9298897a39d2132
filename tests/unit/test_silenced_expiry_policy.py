"""``Silenced.with_expiry_policy``: 6.12's default and maximum silence expiry."""

from __future__ import annotations

import pytest

from core.resources import Silenced, ValidationError


def entry(**fields: object) -> Silenced:
    return Silenced.from_wire({"metadata": {"name": "x", "namespace": "default"}, "subscription": "linux",
                               **fields}).with_defaults(1000, "admin")


def test_an_entry_without_expiry_gets_the_default_and_still_reads_expire_minus_one() -> None:
    got = entry().with_expiry_policy(1000, default_s=600, max_s=0)
    assert got.expire_at == 1600 and got.to_wire()["expire"] == -1
    assert entry().with_expiry_policy(1000, default_s=0, max_s=0).expire_at == 0  # 0: forever, as before 6.12
    assert entry(begin=2000).with_expiry_policy(1000, default_s=600, max_s=0).expire_at == 2600


def test_an_expiry_beyond_the_maximum_is_refused() -> None:
    assert entry(expire=3600).with_expiry_policy(1000, default_s=600, max_s=3600).expire_at == 4600
    with pytest.raises(ValidationError, match="max-silenced-expiry-time-allowed"):
        entry(expire=3601).with_expiry_policy(1000, default_s=600, max_s=3600)
    with pytest.raises(ValidationError):  # a default beyond the maximum is caught at start-up; here too
        entry().with_expiry_policy(1000, default_s=7200, max_s=3600)
    # booked ahead: the time in force counts from begin, so the default fits the maximum
    ahead = entry(begin=5000).with_expiry_policy(1000, default_s=3600, max_s=3600)
    assert ahead.expire_at == 8600
