import pytest

from valuegym.lm.prompts import (
    check_continuations,
    check_generate_arguments,
    check_prompt,
    check_prompts,
    cut_at_stop,
)


def test_check_prompt_keeps_text_and_copies_messages_to_plain_dicts():
    assert check_prompt("hello", "prompts[0]") == "hello"
    message = {"role": "user", "content": "hi", "name": "ignored"}
    assert check_prompt((message,), "prompts[0]") == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("prompt", "where"),
    [
        ([], r"prompts\[3\]: expected text or a non-empty list"),
        ([{"role": "user"}], r"prompts\[3\]\[0\]: 'role' and 'content'"),
        (["hi"], r"prompts\[3\]\[0\]: expected a mapping"),
        (42, r"prompts\[3\]: expected text"),
    ],
)
def test_bad_prompts_name_where(prompt, where):
    with pytest.raises(ValueError, match=where):
        check_prompt(prompt, "prompts[3]")


def test_check_prompts_names_the_bad_prompt_and_refuses_a_single_string():
    assert check_prompts(["a", [{"role": "user", "content": "b"}]]) == (
        "a",
        [{"role": "user", "content": "b"}],
    )
    with pytest.raises(ValueError, match=r"prompts\[1\]: expected text"):
        check_prompts(["a", 7])
    with pytest.raises(ValueError, match="not a single string"):
        check_prompts("abc")


def test_check_continuations():
    assert check_continuations(["a", ""]) == ("a", "")
    with pytest.raises(ValueError, match=r"continuations\[1\]: expected a string"):
        check_continuations(["a", 3])
    with pytest.raises(ValueError, match="not a single string"):
        check_continuations("abc")


def test_check_generate_arguments():
    assert check_generate_arguments(8, ["\n", "END"]) == ("\n", "END")
    with pytest.raises(ValueError, match="max_new_tokens"):
        check_generate_arguments(-1, ())
    with pytest.raises(ValueError, match="max_new_tokens"):
        check_generate_arguments(2.5, ())
    with pytest.raises(ValueError, match="single string"):
        check_generate_arguments(4, "\n")
    with pytest.raises(ValueError, match=r"stop\[1\]"):
        check_generate_arguments(4, ["a", ""])


def test_cut_at_stop_cuts_before_the_earliest_stop():
    assert cut_at_stop("one. two\nthree", ["\n", "."]) == ("one", True)
    assert cut_at_stop("no stop here", ["\n"]) == ("no stop here", False)
