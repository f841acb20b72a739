import pytest

from valuegym.envs.registration import env_class, env_parameters


def test_env_parameters_name_the_constructor_arguments_in_order():
    assert env_parameters("valuegym/Orchard-v0") == (
        "goods",
        "profile",
        "out_of_stock_probability",
        "episode_length",
        "pick_effort",
        "render_mode",
    )


def test_env_class_refuses_an_id_that_is_not_valuegym():
    with pytest.raises(KeyError, match="not a valuegym env"):
        env_class("CartPole-v1")
