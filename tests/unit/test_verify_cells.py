"""verify's judgement of one window of one series: drift, rows in flight, resets."""

from __future__ import annotations

import pytest

from exporter.history.verify import _cell, window_edges

START, END = 3600.0, 7200.0


def judge(
    samples: list[tuple[float, float]],
    counted: float,
    before: float = 10.0,
    in_flight: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, float, str]:
    cell = _cell("k_total", START, END, {"kind": "a"}, samples, counted, before, in_flight)
    return cell.stored, cell.drift, cell.note


def test_equal_increase_is_no_drift() -> None:
    assert judge([(3590, 10.0), (5000, 12.0), (7190, 15.0)], counted=5) == (5.0, 0.0, "")


def test_missing_rows_are_drift_with_their_sign() -> None:
    assert judge([(3590, 10.0), (7190, 15.0)], counted=6)[:2] == (5.0, -1.0)
    assert judge([(3590, 10.0), (7190, 17.0)], counted=6)[:2] == (7.0, 1.0)


def test_rows_in_flight_at_the_edges_are_explained_up_to_their_number() -> None:
    # two rows just before the end were counted after it; one before the start after it
    stored, drift, note = judge([(3590, 10.0), (7190, 13.0)], counted=5, in_flight=(0, 2))
    assert (stored, drift) == (3.0, 0.0) and "in flight" in note
    assert judge([(3590, 10.0), (7190, 12.0)], counted=5, in_flight=(0, 2))[1] == -1.0
    assert judge([(3590, 9.0), (7190, 15.0)], counted=5, in_flight=(1, 0))[1] == 0.0


def test_a_reset_is_explained_and_measured_as_prometheus_does() -> None:
    stored, drift, note = judge([(3590, 10.0), (5000, 12.0), (5100, 1.0), (7190, 4.0)], 5)
    assert (stored, drift) == (2.0 + 1.0 + 3.0, 0.0) and "reset" in note


def test_a_series_first_stored_inside_the_window() -> None:
    # the database had rows before the window: the exporter started inside it, not drift
    assert judge([(5000, 30.0), (7190, 31.0)], counted=3, before=28)[1:] == (
        0.0,
        "series first stored in this window (the exporter started or was not scraped)",
    )
    # a brand-new series: all its rows are inside the window and must be there
    assert judge([(5000, 2.0), (7190, 3.0)], counted=4, before=0)[:2] == (3.0, -1.0)


def test_a_scrape_gap_at_the_end_is_explained_not_read_as_zero() -> None:
    # backfilled up to 7000 s, live from 7500 s: nothing answers at 7200 s
    _, drift, note = judge([(3600, 10.0), (6600, 14.0), (7500, 16.0)], counted=5)
    assert drift == 0.0 and "did not scrape" in note


def test_float_rounding_is_not_drift() -> None:
    assert judge([(3590, 0.1), (7190, 0.1 + 0.2)], counted=0.2)[1] == 0.0


def test_a_sample_older_than_the_lookback_does_not_answer_at_an_edge() -> None:
    assert judge([(3000, 10.0), (7190, 15.0)], counted=5, before=0)[:2] == (15.0, 10.0)


@pytest.mark.parametrize(("now", "first", "last"), [(7300.0, 0.0, 7200.0), (7200.0, 0.0, 7200.0)])
def test_windows_are_the_last_closed_ones(now: float, first: float, last: float) -> None:
    edges = window_edges(now, 2, 3600.0)
    assert (edges[0], edges[-1], len(edges)) == (first, last, 3)
