"""The study's estimate of the time left, from the runs the process timed."""

from pathlib import Path

from mrae.apps.study.pace import Pace
from mrae.apps.study.spec import Row

A = Row("a", Path("a.yaml"), "baseline")
B = Row("b", Path("b.yaml"), "mrae")
LONG = Row("long", Path("l.yaml"), "mrae_long", schedule_scale=2)
HOST = Row("retina", Path("r.yaml"), "mrae", detector="retinanet")


def test_a_row_takes_its_own_mean_and_an_untimed_row_its_hosts_mean_times_its_scale():
    pace = Pace()
    assert pace.estimate(A) is None
    pace.add(A, 600.0)
    pace.add(A, 1200.0)
    pace.add(B, 1800.0)
    assert pace.estimate(A) == 900.0
    assert pace.estimate(LONG) == 2 * (600.0 + 1200.0 + 1800.0) / 3
    assert pace.estimate(HOST) is None  # another host: never guessed from Faster R-CNN's runs


def test_the_time_left_divides_by_the_workers_and_counts_untimed_runs_apart():
    pace = Pace()
    pace.add(A, 1800.0)
    assert pace.left([]) is None
    assert pace.left([A, A, A, A], workers=2) == (
        "about 1.0 h left for 4 runs, 2 at a time (at the pace of the study's finished runs)")
    assert pace.left([A], workers=1) == "about 30 min left for 1 run (at the pace of the study's finished runs)"
    assert pace.left([A, HOST, HOST], workers=2) == (
        "about 30 min left for 1 run, 2 at a time; 2 runs of a host not timed yet (at the pace of the "
        "study's finished runs)")  # one run takes its own time, whatever the workers
    assert pace.left([HOST]) == "1 run of a host not timed yet (at the pace of the study's finished runs)"


def test_a_part_trained_run_counts_for_its_steps_left_and_an_untimed_host_apart():
    pace = Pace()
    pace.add(A, 1000.0)
    assert pace.remaining([(A, 0.25), (B, 1.0), (HOST, 1.0)]) == ([250.0, 1000.0], 1)


def test_a_run_timed_on_a_slower_machine_counts_at_the_speed_now():
    from mrae.apps.study.pace import run_gflops

    # finished at 50 GFLOP/s a run; the machine now gives 150: a third of its time
    asked = []
    pace = Pace(speed=lambda threads: (asked.append(threads), 150.0)[1], threads=1)
    pace.add(A, 5400.0, gflops=50.0, threads=2)  # scaled at the runs' threads to come
    assert asked == [1]
    pace.add(B, 1800.0)  # its record has no speed: its own time
    assert pace.estimate(A) == 1800.0 and pace.estimate(B) == 1800.0
    assert pace.left([A], workers=1) == (
        "about 30 min left for 1 run (at the pace of the study's finished runs, scaled to this "
        "machine's 150 GFLOP/s a run now)")
    unknown_now = Pace()  # the speed now unknown (a GPU): every run at its own time
    unknown_now.add(A, 5400.0, gflops=50.0)
    assert unknown_now.estimate(A) == 5400.0 and "scaled" not in unknown_now.left([A])
    at_their_threads = Pace(speed=lambda threads: 100.0 * threads)  # each run at its own threads
    at_their_threads.add(A, 3600.0, gflops=100.0, threads=2)
    assert at_their_threads.estimate(A) == 1800.0
    assert at_their_threads.left([A]).endswith("scaled to this machine's speed now at their threads)")
    assert run_gflops({"machine": {"device": "CPU", "gflops": 61.5, "threads": 1}}) == 61.5
    assert run_gflops({"machine": {"device": "CPU"}}) is None and run_gflops({}) is None
