from valuegym.lm.sequences import common_prefix_length, plan_rounds


def test_identical_prompts_are_one_read_and_prefixes_are_shared():
    prompts = [[1, 2, 3, 4], [1, 2, 5], [1, 2, 3, 4], [9]]
    [reads] = plan_rounds(prompts, new_tokens=2, max_cells=100, max_sequences=8)
    assert [read.token_ids for read in reads] == [(1, 2, 3, 4), (1, 2, 5), (9,)]
    assert [read.members for read in reads] == [(0, 2), (1,), (3,)]
    assert [read.shared for read in reads] == [0, 2, 0]
    assert sum(read.cells for read in reads) == 4 + 1 + 1


def test_a_read_always_decodes_its_last_token():
    [reads] = plan_rounds([[1, 2], [1, 2, 3]], new_tokens=1, max_cells=100, max_sequences=8)
    assert [read.shared for read in reads] == [0, 2]
    assert all(read.cells >= 1 for read in reads)


def test_rounds_respect_cells_and_sequences():
    prompts = [[7] * 10] * 5 + [[8] * 10]
    rounds = plan_rounds(prompts, new_tokens=4, max_cells=40, max_sequences=3)
    members = sorted(m for reads in rounds for read in reads for m in read.members)
    assert members == list(range(6))
    for reads in rounds:
        assert sum(len(read.members) for read in reads) <= 3
        assert sum(read.cells + 4 * len(read.members) for read in reads) <= 40
        assert reads[0].shared == 0


def test_common_prefix_length():
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([], [1]) == 0
