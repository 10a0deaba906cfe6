"""The default thread count follows the load (ecp._free_cores): computed from /proc/stat readings."""
import os
import subprocess
import sys

import pytest

import ecp
from ecp import _free_cores


class FakeClock:
    """Readings of (monotonic time, busy ticks, total ticks, this process's CPU seconds) to replay."""

    def __init__(self, monkeypatch, ncpu=2):
        self.now, self.busy, self.total, self.mine = 100.0, 0, 0, 0.0
        self.ncpu = ncpu
        monkeypatch.setattr(_free_cores, "_cpu_ticks", lambda cpus: (self.busy, self.total, self.ncpu))
        monkeypatch.setattr(_free_cores.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(_free_cores.time, "process_time", lambda: self.mine)
        monkeypatch.setattr(_free_cores, "_sampler", _free_cores._Sampler())
        monkeypatch.setattr(_free_cores, "adaptive", True)

    def advance(self, seconds, others_cores, mine_cores):
        """``seconds`` of wall time with other programs using ``others_cores`` and us ``mine_cores``."""
        ticks = int(round(seconds * 100))   # 100 ticks a second a CPU
        self.now += seconds
        self.total += ticks * self.ncpu
        self.busy += int(round(ticks * (others_cores + mine_cores)))
        self.mine += seconds * mine_cores


@pytest.mark.parametrize("others, mine, expected", [
    (0.0, 0.0, 2), (0.0, 2.0, 2), (1.0, 1.0, 1), (1.0, 0.0, 1), (2.0, 0.0, 1), (0.3, 1.7, 2), (0.6, 0.0, 1),
])
def test_free_cores_subtracts_other_programs_only(monkeypatch, others, mine, expected):
    clock = FakeClock(monkeypatch)
    assert _free_cores.free_cores(2) == 2           # the first reading: no answer yet, every core
    clock.advance(0.5, others, mine)
    assert _free_cores.free_cores(2) == expected


def test_a_reading_stands_for_a_window(monkeypatch):
    clock = FakeClock(monkeypatch)
    _free_cores.free_cores(2)
    clock.advance(0.5, 1.0, 0.0)
    assert _free_cores.free_cores(2) == 1
    clock.advance(0.1, 0.0, 0.0)                   # within WINDOW: the last answer, no new reading
    assert _free_cores.free_cores(2) == 1
    clock.advance(0.3, 0.0, 0.0)                   # a new window, the load gone
    assert _free_cores.free_cores(2) == 2


def test_off_switch_and_single_core(monkeypatch):
    clock = FakeClock(monkeypatch)
    monkeypatch.setattr(_free_cores, "adaptive", False)
    _free_cores.free_cores(2)
    clock.advance(0.5, 2.0, 0.0)
    assert _free_cores.free_cores(2) == 2
    monkeypatch.setattr(_free_cores, "adaptive", True)
    assert _free_cores.free_cores(1) == 1


def test_unreadable_load_means_every_core(monkeypatch):
    FakeClock(monkeypatch)
    monkeypatch.setattr(_free_cores, "_cpu_ticks", lambda cpus: None)
    assert _free_cores.free_cores(4) == 4
    assert _free_cores.free_cores(4) == 4


def test_an_explicit_thread_count_is_never_adapted(monkeypatch):
    clock = FakeClock(monkeypatch)
    _free_cores.free_cores(2)
    clock.advance(0.5, 2.0, 0.0)
    with ecp.num_threads(2):
        assert ecp.get_num_threads() == (2 if ecp.openmp_enabled() else 1)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat (Linux)")
def test_proc_stat_reading():
    busy, total, ncpu = _free_cores._cpu_ticks(None)
    assert 0 <= busy <= total and ncpu >= 1


@pytest.mark.skipif(not os.path.exists("/proc/stat") or (os.cpu_count() or 1) < 2 or not ecp.openmp_enabled(),
                    reason="needs /proc/stat, 2 cores and OpenMP")
def test_a_busy_process_takes_a_thread_and_gives_it_back():
    """Real load: a process spinning on one core lowers the default by one; the kernels' own work never does.
    (The machine may be busy with other jobs too: the test only checks the direction of each change.)"""
    code = (
        "import subprocess, sys, time, ecp\n"
        "def settle():\n"
        "    for _ in range(3):\n"
        "        ecp.get_num_threads(); time.sleep(0.3)\n"
        "    return ecp.get_num_threads()\n"
        "before = settle()\n"
        "p = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "try:\n"
        "    busy = settle()\n"
        "finally:\n"
        "    p.kill(); p.wait()\n"
        "print(before, busy, settle())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ECP_ADAPTIVE_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    before, busy, after = map(int, out.stdout.split())
    assert busy < before or before == 1
    assert 1 <= busy and after >= busy


def test_import_reads_the_switches():
    for env, expected in (({"ECP_ADAPTIVE_THREADS": "0"}, "False"), ({"OMP_NUM_THREADS": "2"}, "False"),
                          ({}, "True")):
        clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "ECP_ADAPTIVE_THREADS")}
        out = subprocess.run([sys.executable, "-c", "from ecp import _free_cores; print(_free_cores.adaptive)"],
                             capture_output=True, text=True, timeout=60, env={**clean, **env})
        assert out.stdout.strip() == expected, (env, out.stderr)
