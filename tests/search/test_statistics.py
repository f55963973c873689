"""Statistics over seeds: success rates, calls to 50 %, intervals and savings (numbers only)."""

import math

import numpy as np
import pandas as pd
import pytest

from gapkit.search.statistics import (calls_to_half_success, oracle_savings, savings_interval, success_rate,
                                      wilson_interval)

inf = math.inf


def test_success_rate_and_calls_to_half_success():
    np.testing.assert_allclose(success_rate([25, inf, 10, 40], np.array([0, 10, 30, 50])), [0, 0.25, 0.5, 0.75])
    assert calls_to_half_success([30, 10, inf, 20]) == 20  # 2 of 4 seeds by 20 calls
    assert calls_to_half_success([5, inf, inf]) == inf  # 1 of 3 is not half
    assert calls_to_half_success([7]) == 7
    with pytest.raises(ValueError):
        calls_to_half_success([])


def test_oracle_savings_reads_the_target():
    ga = pd.DataFrame({"budget": [300] * 4, "ga_potential": [10.0, 20.0, 30.0, 40.0]})
    slow = pd.DataFrame({"budget": [3000] * 4, "random": [100.0, 150.0, inf, 900.0]})
    out = oracle_savings(ga, slow)
    assert out.calls_to_half == 20 and out.random_calls_to_half == 150 and out.random_budget == 3000
    assert out.ratio == 7.5 and out.bound == "=" and out.target_met()
    assert not out.target_met(min_ratio=8)
    never = pd.DataFrame({"budget": [3000] * 4, "random": [inf, inf, inf, 5.0]})
    bounded = oracle_savings(ga, never)
    assert bounded.ratio == 150 and bounded.bound == ">"  # 3000 / 20: a lower bound
    weak = pd.DataFrame({"budget": [300] * 4, "ga_potential": [10.0, 20.0, inf, 40.0]})
    assert (oracle_savings(weak, slow).found, oracle_savings(weak, slow).seeds) == (3, 4)
    assert not oracle_savings(weak, slow).target_met()  # 3/4 found < 90 %
    lost = pd.DataFrame({"budget": [300] * 4, "ga_potential": [inf, inf, inf, 40.0]})
    assert math.isnan(oracle_savings(lost, slow).ratio) and not oracle_savings(lost, slow).target_met()
    other = oracle_savings(ga.assign(ga_potential_energy=[5.0, 8.0, 9.0, 9.0]), slow.assign(random_energy=[90.0] * 4),
                           column="ga_potential_energy", random_column="random_energy")
    assert other.calls_to_half == 8 and other.random_calls_to_half == 90 and other.ratio == 90 / 8


def test_savings_interval_brackets_the_ratio_and_narrows_with_more_seeds():
    ga, rs = [10.0, 12.0, 14.0, 16.0, inf], [100.0, 120.0, 140.0, 160.0, inf]
    low, high = savings_interval(ga, rs, 3000)
    assert low <= 10.0 <= high  # the point estimate, 140 / 14
    assert savings_interval(ga, rs, 3000) == (low, high)  # seeded
    low10, high10 = savings_interval(ga * 10, rs * 10, 3000)
    assert high10 - low10 < high - low
    assert savings_interval([5.0] * 4, [inf] * 4, 3000) == (600.0, 600.0)  # random never: its budget bounds
    assert savings_interval([inf] * 4, [50.0] * 4, 3000) == (0.0, 0.0)  # the GA never: no saving


def test_wilson_interval():
    low, high = wilson_interval(10, 10)
    assert 0.7 < low < 0.85 and high == 1.0  # all seeds found: the interval still admits misses
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0.3 < high < 0.5
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_break_even_oracle_cost_equalises_the_times_to_half_success():
    from gapkit.search.statistics import break_even_oracle_seconds

    # GA: 100 calls at 2 s; random: 1000 calls at 0.1 s. With an oracle dearer by c both take as long when
    # 100 (2 + c) = 1000 (0.1 + c): c = 100 / 900; the oracle then costs 0.1 + c per call
    c = break_even_oracle_seconds(100, 2.0, 1000, 0.1)
    assert c == pytest.approx(0.1 + 100 / 900)
    assert 100 * (2.0 + c - 0.1) == pytest.approx(1000 * c)
    assert break_even_oracle_seconds(100, 0.05, 1000, 0.1) == 0.0  # GA already first
    assert break_even_oracle_seconds(500, 2.0, 400, 0.1) == math.inf  # GA never needs fewer calls
    assert break_even_oracle_seconds(100, 2.0, math.inf, 0.1) == 0.0  # random search never got there
