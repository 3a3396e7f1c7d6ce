"""Two synthesis runs of one configuration take turns on its work folder (flows.locks.folder_lock, used by flows.synth and tb.runner)."""

import multiprocessing
import time

from flows.locks import folder_lock as _work_lock


def _hold(work, started, log):
    with _work_lock(work, "the test's first holder"):
        started.set()
        time.sleep(0.5)
        log.put("first done")


def test_second_run_waits_for_the_first(tmp_path, capsys):
    ctx = multiprocessing.get_context("fork")
    started, log = ctx.Event(), ctx.Queue()
    first = ctx.Process(target=_hold, args=(tmp_path, started, log))
    first.start()
    assert started.wait(10)
    with _work_lock(tmp_path, "the test's first holder"):
        # The first holder must have finished its whole critical section before we got here.
        assert log.get(timeout=1) == "first done"
    first.join(10)
    assert first.exitcode == 0
    assert "waiting for the test's first holder to finish" in capsys.readouterr().err


def test_lock_is_free_again_after_an_exception(tmp_path):
    try:
        with _work_lock(tmp_path, "x"):
            raise RuntimeError("synthesis failed")
    except RuntimeError:
        pass
    t0 = time.monotonic()
    with _work_lock(tmp_path, "x"):
        assert time.monotonic() - t0 < 0.5
