"""A batch's CPU pool while its workers start (``inline_while_starting``): the batch process
prepares the first items itself, hands the rest to the workers once they are ready, and
shutting down meanwhile neither hangs nor loses an item silently."""

from __future__ import annotations

import os
from concurrent.futures import CancelledError, wait

import pytest

from service.cpupool import start_pool


def test_items_are_prepared_here_until_the_workers_are_ready_then_by_them() -> None:
    pool = start_pool(2, inline_while_starting=True)
    try:
        first = [pool.submit(os.getpid) for _ in range(40)]
        pids = [f.result(timeout=60) for f in first]
        assert pool.wait_started(60)
        later = [pool.submit(os.getpid).result(timeout=60) for _ in range(6)]
    finally:
        pool.shutdown(wait=True)
    # the workers take a second to start, the first item runs here at once
    assert pids[0] == os.getpid() and pool.inline_done >= 1
    assert pids.count(os.getpid()) == pool.inline_done
    assert os.getpid() not in later and len(set(later)) >= 1


def test_an_error_raised_here_reaches_the_caller_as_the_pool_would_hand_it() -> None:
    pool = start_pool(1, inline_while_starting=True)
    try:
        with pytest.raises(ValueError):
            pool.submit(int, "not a number").result(timeout=60)
    finally:
        pool.shutdown(wait=True)


def test_shutting_down_while_the_workers_start_cancels_what_waits_and_returns() -> None:
    pool = start_pool(1, inline_while_starting=True)
    futures = [pool.submit(sum, range(10**6)) for _ in range(200)]
    pool.shutdown(wait=True, cancel_futures=True)
    done, pending = wait(futures, timeout=60)
    assert not pending
    finished = [f for f in futures if not f.cancelled()]
    assert all(f.result() == sum(range(10**6)) for f in finished)
    assert any(f.cancelled() for f in futures)
    with pytest.raises(CancelledError):
        next(f for f in futures if f.cancelled()).result()


def test_a_plain_shutdown_while_the_workers_start_finishes_every_item() -> None:
    pool = start_pool(1, inline_while_starting=True)
    futures = [pool.submit(sum, range(10**5)) for _ in range(50)]
    pool.shutdown(wait=True)
    assert all(f.result(timeout=0) == sum(range(10**5)) for f in futures)
