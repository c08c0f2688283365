"""Markdown tables, for every table a tool prints or writes (results, benchmarks, checks)."""


def markdown_row(cells):
    """One Markdown table row of ``cells`` (any values, shown with str)."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_header(columns):
    """A Markdown table's header line and its separator line."""
    return markdown_row(columns) + "\n|" + "---|" * len(columns)


def markdown_table(columns, rows):
    """A Markdown table (str ending in a newline) of ``rows``, sequences of cells."""
    return "\n".join([markdown_header(columns), *map(markdown_row, rows)]) + "\n"
