"""The executor's queue against simple models: :class:`_Pending` (a round's tasks, sent or
left) and a whole :class:`TaskRun` on an in-process executor that dispatches lazily, finishes
tasks out of order and breaks the pool at random (leaving journals of partly run batches, as
a dead loky pool does), with flaky items and disk errors that stop dispatch."""

from __future__ import annotations

import errno
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastraster.execution.batches import run_batch
from fastraster.execution.supervisor import TaskRun, _Pending
from fastraster.execution.tasks import safe_task
from fastraster.io.atomic import OutputError

_SEGMENT = st.one_of(
    st.tuples(st.integers(0, 30), st.integers(1, 30)).map(lambda t: range(t[0], t[0] + t[1])),
    st.lists(st.integers(0, 100), min_size=1, max_size=12),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 100), max_size=5), st.lists(_SEGMENT, max_size=5),
       st.integers(1, 7), st.integers(0, 40))
def test_pending_sends_then_returns_the_rest(isolated, segments, size, k):
    want = [[i] for i in isolated] + [list(s[j:j + size]) for s in segments
                                      for j in range(0, len(s), size)]
    p = _Pending(list(isolated), list(segments), size)
    sent = []
    while len(sent) < k and (task := p.next()) is not None:
        sent.append(task)
    iso, rest = p.rest()
    assert sent == want[:len(sent)]
    assert all(len(s) for s in rest)
    assert iso == isolated[len(sent):]
    flat = [i for t in sent for i in t] + iso + [i for s in rest for i in s]
    assert flat == isolated + [i for s in segments for i in s]
    assert p.next() is None and p.rest() == ([], [])


class _FakeExecutor:
    backend, is_open, remote, streams = "fake", True, False, True

    def __init__(self, rng):
        self.rng = rng

    def fresh_workers(self):
        pass

    def end_workers(self):
        pass

    def map_unordered(self, func, arg_tuples):
        rng, it, pulled, seen, exhausted = self.rng, iter(arg_tuples), [], set(), False
        while True:
            if not exhausted and (not pulled or rng.random() < 0.6):
                try:
                    args = next(it)
                except StopIteration:
                    exhausted = True
                    continue
                for index, _, _ in args[3]:
                    assert index not in seen, f"item {index} sent twice in one round"
                    seen.add(index)
                pulled.append(args)
                continue
            if not pulled:
                return
            if rng.random() < 0.05:  # the pool breaks
                for f, a, batch_id, entries, ctx in pulled:
                    if rng.random() < 0.7:  # started: k items done, the next one running
                        run_batch(f, a, batch_id, entries[:rng.randint(0, len(entries))], ctx)
                raise RuntimeError("A worker died: {SIGKILL(-9)}")
            yield func(*pulled.pop(rng.randrange(len(pulled))))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(1, 6), st.integers(0, 2),
       st.integers(1, 6))
def test_every_item_reported_once(seed, n, batch_size, retries, stop_after):
    rng = random.Random(seed)
    kind = {i: rng.random() for i in range(n)}
    final: set[int] = set()

    def func(item):
        assert item not in final, f"item {item} ran after its final record"

        def work(rec):
            if kind[item] < 0.1:
                raise OutputError(errno.ENOSPC, f"/out/{item}.tif")
            if kind[item] < 0.3 and rng.random() < 0.5:
                raise ValueError("flaky")
            rec["status"] = "ok"

        return safe_task(work, str(item), None)

    run = TaskRun(func, list(range(n)), executor=_FakeExecutor(rng), batch_size=batch_size,
                  retries=retries, sweep=False, stop_after=stop_after)
    for rec in run:
        index = int(rec["path"])
        assert index not in final, f"item {index} reported twice"
        final.add(index)
        assert rec["attempts"] <= retries + 1
    assert final == set(range(n)) and run.finished == n
