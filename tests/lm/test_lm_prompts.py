import pytest

from valuegym.lm.prompts import chat_messages, check_generate_arguments, cut_at_stop


def test_chat_messages_distinguishes_text_from_messages():
    assert chat_messages("hello", "prompts[0]") is None
    messages = chat_messages(({"role": "user", "content": "hi"},), "prompts[0]")
    assert messages == [{"role": "user", "content": "hi"}]


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
        chat_messages(prompt, "prompts[3]")


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
