"""Verifiers: how a target's completion is checked. One function per kind of check, named by an evaluation's
`scoring`; the evaluation (forgetbench's own and, through `process_results`, lm-eval's for the micro world), the
rewards of on-policy methods and the filters of self-generated data all call `verify`.

- "exact": the completion is the reference, up to runs of whitespace (the micro targets, reverse_words);
- "generate": math-verify's equivalence of the completion's final answer with the reference (GSM8K, MATH), or
  for multiple choice (`letters` in the item) the boxed or stated letter; the question is asked with a
  step-by-step instruction (forgetbench.runner.reasoning);
- "answer": the same check, the question asked as it is (short answers: the arithmetic target), and a numeric
  reference must also be the completion's last number: math-verify reads "11 + 3 is equal to" as the expression
  11 + 3, which *is* 14, so restating the question would pass (self_sft learned to do exactly that).

Importable without torch.
"""

from __future__ import annotations

import re

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
OPERATOR_BEFORE = re.compile(r"(?:[-+*/×÷^]|\b(?:x|times|plus|minus|divided by|over)\b)\s*$", re.IGNORECASE)


def exact_match(gold: str, completion: str) -> bool:
    """The completion is the reference, up to runs of whitespace and at the ends."""
    return " ".join(completion.split()) == " ".join(gold.split())


def is_correct(gold: str, completion: str, letters: tuple[str, ...] | None = None) -> bool:
    """math-verify: parse the reference and the completion, then check mathematical equivalence.
    For multiple choice (`letters`), the completion's boxed or stated letter must be the reference's."""
    from math_verify import LatexExtractionConfig, StringExtractionConfig, parse, verify

    if letters:
        ref = parse(gold, extraction_config=[StringExtractionConfig(strings=letters)])
        got = parse(completion, extraction_config=[LatexExtractionConfig(boxed_match_priority=0),
                                                  StringExtractionConfig(strings=letters)])
        return bool(ref) and bool(verify(ref, got))
    # An escaped dollar is a currency sign (MATH's "\\$18.90"), not maths mode: dropped from both sides, so the
    # gold answer parses and "\\boxed{\\$18.90}" and "\\boxed{18.90}" both match it.
    gold, completion = gold.replace("\\$", ""), completion.replace("\\$", "")
    ref = parse(gold if "$" in gold or "\\boxed" in gold else f"${gold}$")
    return bool(ref) and bool(verify(ref, parse(completion)))


def states_number(gold: str, completion: str) -> bool:
    """A numeric reference is the completion's last number (thousands commas allowed), and that number is no
    operand ("1 times 5" restates a question whose answer is 5): the answer is stated, not left as an expression
    that evaluates to it. A reference that is not a plain number passes."""
    if not NUMBER.fullmatch(gold.strip()):
        return True
    last = None
    for last in NUMBER.finditer(completion):
        pass
    return (last is not None and not OPERATOR_BEFORE.search(completion[:last.start()])
            and float(last.group().replace(",", "")) == float(gold.strip().replace(",", "")))


CHECKS = {"exact": lambda item, completion: exact_match(item["answer"], completion),
          "generate": lambda item, completion: is_correct(item["answer"], completion, item.get("letters")),
          "answer": lambda item, completion: (states_number(item["answer"], completion)
                                              and is_correct(item["answer"], completion))}


def verify(scoring: str, completion: str, item: dict) -> bool:
    """Whether `completion` answers `item` (its "answer", and "letters" for multiple choice) under `scoring`."""
    if scoring not in CHECKS:
        raise ValueError(f"scoring {scoring!r} has no verifier (one of {', '.join(CHECKS)})")
    return bool(CHECKS[scoring](item, completion))
