"""Thread counts capped by the share of cores a bench gives each parallel seed."""

from __future__ import annotations

import os

from hepchain.core.threads import ENV, available_cores, cores_per_process, thread_count


def test_thread_count_is_capped_by_the_process_share(monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    # no share granted: what the study asks for, at most the cores there are
    assert thread_count(3) == min(3, available_cores())
    assert thread_count(10_000) == available_cores()
    assert thread_count(None) == available_cores()
    with cores_per_process(2):
        assert (thread_count(8), thread_count(1), thread_count(None)) == (2, 1, 2)
        with cores_per_process(0):  # fewer cores than processes: still one thread each
            assert thread_count(4) == 1
        assert os.environ[ENV] == "2"
    assert ENV not in os.environ
