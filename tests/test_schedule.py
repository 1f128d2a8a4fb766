import pytest

from lazybench.engine import Schedule, ScheduleError


def test_default_schedule_matches_the_papers_figure_for_llama2() -> None:
    plan = Schedule().resolve(32)
    assert plan.starts == (0, 9, 19, 28)  # layers 1-9, 10-19, 20-28, 29-32 in the paper's 1-based terms
    assert plan.keep == (1.0, 0.7, 0.4, 0.1)
    assert plan.ends == (9, 19, 28, 32)


def test_layer_unit_and_describe() -> None:
    s = Schedule(boundaries=(4, 8), keep=(0.5, 0.25), unit="layer")
    assert s.resolve(12).starts == (0, 4, 8)
    assert s.describe() == "layer[4:0.5,8:0.25]"
    assert Schedule.full().resolve(5).starts == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep": (0.7, 0.0, 0.1)}, "keep fraction 0.0"),
        ({"keep": (0.7, 1.5, 0.1)}, "keep fraction 1.5"),
        ({"keep": (0.4, 0.7, 0.1)}, "must not increase"),
        ({"boundaries": (0.6, 0.3, 0.9)}, "strictly increasing"),
        ({"boundaries": (0.3, 1.2, 0.9)}, "depth boundary 1.2"),
        ({"boundaries": (0.3, 0.6)}, "2 boundaries but 3 keep"),
        ({"boundaries": (0, 3, 5), "unit": "layer"}, "layer boundary 0"),
        ({"unit": "percent"}, "unit must be"),
    ],
)
def test_bad_schedules_name_the_bad_value(kwargs, message) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule(**kwargs)


def test_boundaries_outside_the_model_are_rejected_on_resolve() -> None:
    with pytest.raises(ScheduleError, match="outside 1..7"):
        Schedule(boundaries=(4, 9), keep=(0.5, 0.2), unit="layer").resolve(8)
    with pytest.raises(ScheduleError, match="does not come after"):
        Schedule(boundaries=(0.3, 0.35), keep=(0.5, 0.2)).resolve(4)


def test_from_config_rejects_unknown_keys() -> None:
    with pytest.raises(ScheduleError, match="unknown schedule keys"):
        Schedule.from_config({"boundaries": [0.5], "keep": [0.5], "fraction": 1})
    assert Schedule.from_config({"boundaries": [0.5], "keep": [0.5]}) == Schedule((0.5,), (0.5,))
