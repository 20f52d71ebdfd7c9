"""The `for`-honouring episode logic of backtest on hand-made step series."""

from __future__ import annotations

from exporter.history.backtest import MAX_POINTS, chunks, firing_episodes

STEP = 30.0


def steps(first: float, last: float) -> list[float]:
    """The evaluation times from first to last inclusive."""
    return [first + i * STEP for i in range(int((last - first) / STEP) + 1)]


def test_a_run_fires_from_for_after_its_start_until_the_step_it_ends() -> None:
    # Returned at 1000..2200 (41 steps): pending from 1000, firing at 1300, resolved at 2230.
    [episode] = firing_episodes(steps(1000, 2200), STEP, 300, {"kpi": "orders"})
    assert (episode.start, episode.end, episode.seconds) == (1300, 2230, 930)
    assert episode.labels == {"kpi": "orders"}


def test_a_run_shorter_than_for_never_fires() -> None:
    # 1000..1270 held for 270 s: the rule never sees it held for 300 s.
    assert firing_episodes(steps(1000, 1270), STEP, 300) == []
    # 1000..1300: the evaluation at 1300 sees it held exactly 300 s and fires for one step.
    [episode] = firing_episodes(steps(1000, 1300), STEP, 300)
    assert (episode.start, episode.end) == (1300, 1330)


def test_a_missing_step_resets_the_pending_time() -> None:
    # 1000..1240, gap at 1270, 1300..1540: neither half is held 300 s.
    times = steps(1000, 1240) + steps(1300, 1540)
    assert firing_episodes(times, STEP, 300) == []
    # Unordered input and two separate runs each long enough: two episodes.
    times = steps(5000, 5600) + steps(1000, 1390)
    assert [(e.start, e.end) for e in firing_episodes(times, STEP, 300)] == [
        (1300, 1420),
        (5300, 5630),
    ]


def test_without_for_each_returned_step_fires_for_one_step() -> None:
    assert [(e.start, e.end) for e in firing_episodes([600, 900, 930], STEP, 0)] == [
        (600, 630),
        (900, 960),
    ]


def test_for_not_a_multiple_of_the_step_waits_for_the_next_evaluation() -> None:
    # for 45 s at 30 s steps: held 30 s at 1030 (not enough), 60 s at 1060 (fires).
    [episode] = firing_episodes(steps(1000, 1090), STEP, 45)
    assert (episode.start, episode.end) == (1060, 1120)


def test_chunks_cover_the_range_at_step_multiples_without_overlap() -> None:
    pieces = chunks(0, (2 * MAX_POINTS + 5) * STEP, STEP)
    assert pieces == [
        (0, (MAX_POINTS - 1) * STEP),
        (MAX_POINTS * STEP, (2 * MAX_POINTS - 1) * STEP),
        (2 * MAX_POINTS * STEP, (2 * MAX_POINTS + 5) * STEP),
    ]
    assert chunks(100, 100, STEP) == [(100, 100)]
