"""Answer classes for the distribution-shift probe: a predicate on a token's text."""

import re

NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
                "thousand million billion").split()


def is_number(text: str) -> bool:
    """ASCII digits (with a decimal point or comma inside), a simple ordinal, or an English number word."""
    t = text.strip()
    return bool(re.fullmatch(r"[0-9]+([.,][0-9]+)*|[0-9]+(st|nd|rd|th)", t)) or t.lower() in NUMBER_WORDS
