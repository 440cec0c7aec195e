from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from logtui.core.topk import TopK

streams = st.lists(st.integers(min_value=0, max_value=40), max_size=400)


def topk_of(stream: list[int], capacity: int) -> TopK:
    top = TopK(capacity)
    for chunk_start in range(0, len(stream), 37):
        top.update(Counter(stream[chunk_start:chunk_start + 37]))
    return top


@given(streams, st.integers(min_value=1, max_value=50))
def test_estimates_never_exceed_and_stay_within_the_error_bound(stream: list[int],
                                                                capacity: int) -> None:
    true = Counter(stream)
    top = topk_of(stream, capacity)
    assert len(top.counts) <= capacity
    assert top.max_error <= len(stream) // (capacity + 1) + 1
    for key, count in true.items():
        estimate = top.counts.get(key, 0)
        assert count - top.max_error <= estimate <= count


@given(streams, streams, st.integers(min_value=1, max_value=20))
def test_merged_summaries_keep_the_guarantee(a: list[int], b: list[int], capacity: int) -> None:
    merged = topk_of(a, capacity)
    merged.merge(topk_of(b, capacity))
    true = Counter(a + b)
    assert merged.total == len(a) + len(b)
    for key, count in true.items():
        assert count - merged.max_error <= merged.counts.get(key, 0) <= count


@given(st.lists(streams, min_size=1, max_size=8), st.integers(min_value=1, max_value=20))
def test_many_summaries_shrunk_once_keep_the_guarantee(parts: list[list[int]],
                                                      capacity: int) -> None:
    once = TopK(capacity)
    for part in parts:
        once.merge(topk_of(part, capacity), shrink=False)
    once.shrink()
    true = Counter(key for part in parts for key in part)
    assert len(once.counts) <= capacity
    for key, count in true.items():
        estimate = once.counts.get(key, 0)
        assert count - once.max_error <= estimate <= count


def test_counts_are_exact_while_distinct_keys_fit() -> None:
    stream = ["/a"] * 5 + ["/b"] * 3 + ["/c"]
    top = topk_of(stream, 3)  # type: ignore[arg-type]
    assert top.top(2) == [("/a", 5), ("/b", 3)]
    assert top.max_error == 0
