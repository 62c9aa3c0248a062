"""The one markdown-table writer."""

from mrae.tables import markdown_table, separator, table_row


def test_table_has_header_separator_and_rows():
    text = markdown_table(["a", "b"], [[1, "x"], [2.5, "y"]])
    assert text == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | y |"


def test_alignment_letters_right_align_only_their_columns():
    assert separator(3, "lr") == "|---|--:|---|"
    assert table_row([]) == "|  |"
