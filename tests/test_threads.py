"""How many threads veil uses: what the user asks for, else the cores other processes leave idle (veil.threads)."""
import subprocess
import sys

import pytest

from veil import threads
from veil.errors import VeilError


@pytest.fixture
def auto(monkeypatch):
    """The automatic choice: no VEIL_THREADS, and a fresh measurement."""
    monkeypatch.delenv(threads.ENV, raising=False)
    threads._idle_cores.cache_clear()
    yield
    threads._idle_cores.cache_clear()


def test_an_explicit_count_wins(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.chosen_threads() == 3


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_count_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(VeilError, match="VEIL_THREADS must be a positive integer"):
        threads.chosen_threads()


@pytest.mark.parametrize("busy, expected", [(0.0, 2), (0.9, 1), (1.2, 1), (2.0, 1)])
def test_cores_that_others_keep_busy_are_left_to_them(auto, monkeypatch, busy, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores_of_others", lambda since: busy)
    assert threads.chosen_threads() == expected


def test_a_busy_process_beside_us_is_measured():
    """The cause of the slowdown the automatic choice avoids: another CPU-bound process must show up as busy cores
    (and our own work must not)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert threads.busy_cores_of_others(window=0.5) > 0.5
    finally:
        spinner.kill()
        spinner.wait()


def test_the_command_line_sets_the_count(tmp_path, monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    code = ("import os, sys; from veil.cli import main; main(['--threads', '1', 'keygen', '--out', sys.argv[1]]); "
            "print(os.environ['VEIL_THREADS'])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "key")], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "1"


def test_the_window_of_the_first_measurement_opens_at_import(monkeypatch):
    """A command that asks for the idle cores a while after it started sleeps no longer: the window began when
    veil.threads was imported."""
    import time

    monkeypatch.setattr(threads, "_IMPORTED", threads.cpu_reading())
    time.sleep(0.15)
    start = time.monotonic()
    threads.busy_cores_of_others(window=0.1, since=threads._IMPORTED)
    assert time.monotonic() - start < 0.08  # no sleep (the window would be 0.1 s)
    start = time.monotonic()
    threads.busy_cores_of_others(window=0.1)  # a fresh window: the full tenth of a second
    assert time.monotonic() - start >= 0.1
