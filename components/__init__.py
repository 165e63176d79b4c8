"""serverless-cases components: secure building blocks and the cases composed of them."""

from components.args import ComponentArgsError, parse_args
from components.catalog import CASES, Case, UnknownCaseError, get_case

__all__ = ["CASES", "Case", "ComponentArgsError", "UnknownCaseError", "get_case", "parse_args"]
