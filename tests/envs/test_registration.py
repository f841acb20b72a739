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


def test_conversation_v1_takes_v0s_arguments_and_a_repetition_window():
    v0 = env_parameters("valuegym/Conversation-v0")
    v1 = env_parameters("valuegym/Conversation-v1")
    assert v0 is not None
    assert v1 == (*v0[:-1], "repetition_window", "render_mode")
    assert env_class("valuegym/Conversation-v1").metadata["name"] == "conversation_v1"
    assert env_class("valuegym/Conversation-v0").metadata["name"] == "conversation_v0"
