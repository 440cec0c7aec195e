"""An aggregator's replica in `connect`: what it keeps of the buckets it was sent."""

from logtui.core.remote import RETAINED, Replica
from logtui.core.stats import Bucket


def test_a_replica_lets_go_of_buckets_no_window_reaches() -> None:
    replica = Replica(width=10.0)
    replica.apply_stats(10.0, [Bucket(start=0.0, total=1), Bucket(start=10.0, total=2)],
                        replace=True, late=0, since=None)
    assert sorted(replica.buckets) == [0, 1]
    # an hour and more later only the new bucket changes, so only it is sent
    later = RETAINED + 20.0
    replica.apply_stats(10.0, [Bucket(start=later, total=3)], replace=False, late=0, since=None)
    assert [b.total for b in replica.buckets.values()] == [3]
    replica.apply_stats(10.0, [Bucket(start=later - 100.0, total=4)], replace=False, late=0,
                        since=None)     # within the hour: kept with the newest
    assert sorted(b.total for b in replica.buckets.values()) == [3, 4]
