"""A tiny deterministic stand-in for HAC's scripting engine.

Statements (one per line, or separated by ``;``): ``println EXPR``,
``print EXPR``, ``def NAME = EXPR`` / ``NAME = EXPR``, ``return EXPR``,
``throw new Type("msg")``, ``sleep(MS)`` / ``Thread.sleep(MS)``, comments.
Expressions: string literals ('..' or ".."), integers, decimals, ``true``,
``false``, ``null``, variables and ``+`` (concatenation or addition).
An unknown variable raises ``groovy.lang.MissingPropertyException`` as
Groovy does; any other statement is ignored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sessionkeeper.clock import Clock
from sessionkeeper.errors import SessionkeeperError

logger = logging.getLogger(__name__)

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_ASSIGN = re.compile(r"(?:def\s+|[A-Za-z_$][\w$.<>]*\s+)?([A-Za-z_$][\w$]*)\s*=(?!=)\s*(.+)")
_THROW = re.compile(r"throw\s+new\s+([\w.$]+)\s*\((.*)\)\s*")
_SLEEP = re.compile(r"(?:Thread\.)?sleep\s*\(?\s*(\d+)\s*\)?")
_PRINT = re.compile(r"(println|print)\b\s*(.*)")


@dataclass(frozen=True)
class ScriptOutcome:
    """What HAC answers for one script run."""

    output_text: str
    execution_result: str
    stacktrace_text: str


class ScriptError(SessionkeeperError):
    """A Groovy/Java exception raised by the script (class name and message)."""

    def __init__(self, java_class: str, message: str) -> None:
        super().__init__(message)
        self.java_class = java_class
        self.message = message


Value = str | int | float | bool | None


def _split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    depth = 0
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch in "([":
            depth += 1
            current.append(ch)
        elif ch in ")]":
            depth -= 1
            current.append(ch)
        elif ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _to_text(value: Value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class _Interpreter:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.variables: dict[str, Value] = {}
        self.output: list[str] = []

    def evaluate(self, expr: str) -> Value:
        expr = expr.strip()
        if expr.startswith("(") and expr.endswith(")") and len(_split_top_level(expr, "+")) == 1:
            return self.evaluate(expr[1:-1])
        terms = _split_top_level(expr, "+")
        if len(terms) > 1:
            result = self._term(terms[0])
            for term in terms[1:]:
                right = self._term(term)
                if isinstance(result, str) or isinstance(right, str):
                    result = _to_text(result) + _to_text(right)
                elif isinstance(result, int | float) and isinstance(right, int | float):
                    result = result + right
                else:
                    raise ScriptError(
                        "groovy.lang.MissingMethodException",
                        f"No signature of method: plus() is applicable for {expr}",
                    )
            return result
        return self._term(expr)

    def _term(self, term: str) -> Value:
        term = term.strip()
        if len(term) >= 2 and term[0] == term[-1] and term[0] in "'\"":
            return term[1:-1]
        if _NUMBER.fullmatch(term):
            return float(term) if "." in term else int(term)
        if term in ("true", "false"):
            return term == "true"
        if term == "null" or term == "":
            return None
        if term.startswith("(") and term.endswith(")"):
            return self.evaluate(term[1:-1])
        if _IDENT.fullmatch(term):
            if term in self.variables:
                return self.variables[term]
            raise ScriptError(
                "groovy.lang.MissingPropertyException",
                f"No such property: {term} for class: Script1",
            )
        # Method calls and anything richer: the fake does not evaluate them.
        return term

    def run_statement(self, statement: str) -> tuple[bool, Value]:
        """Run one statement; return (returned, value)."""
        text = statement.strip()
        if not text or text.startswith("//") or text.startswith("import "):
            return False, None
        if text.startswith("return"):
            rest = text[len("return") :]
            if not rest or rest[0].isspace() or rest[0] == "(":
                return True, self.evaluate(rest) if rest.strip() else None
        match = _THROW.fullmatch(text)
        if match:
            java_class = match.group(1)
            if "." not in java_class:
                java_class = f"java.lang.{java_class}"
            message = _to_text(self.evaluate(match.group(2))) if match.group(2).strip() else ""
            raise ScriptError(java_class, message)
        match = _SLEEP.fullmatch(text)
        if match:
            self._clock.sleep(int(match.group(1)) / 1000.0)
            return False, None
        match = _PRINT.fullmatch(text)
        if match:
            arg = match.group(2).strip()
            if arg.startswith("(") and arg.endswith(")"):
                arg = arg[1:-1]
            value = _to_text(self.evaluate(arg)) if arg else ""
            self.output.append(value + ("\n" if match.group(1) == "println" else ""))
            return False, None
        match = _ASSIGN.fullmatch(text)
        if match:
            self.variables[match.group(1)] = self.evaluate(match.group(2))
            return False, None
        logger.debug("fake scripting engine ignores a statement it does not model")
        return False, None


def run_script(script: str, clock: Clock) -> ScriptOutcome:
    """Run ``script`` and return HAC's three result fields."""
    interpreter = _Interpreter(clock)
    for line_number, line in enumerate(script.splitlines(), start=1):
        for statement in _split_top_level(line, ";"):
            try:
                returned, value = interpreter.run_statement(statement)
            except ScriptError as exc:
                header = f"{exc.java_class}: {exc.message}" if exc.message else exc.java_class
                trace = f"{header}\n\tat Script1.run(Script1.groovy:{line_number})"
                return ScriptOutcome("".join(interpreter.output), "", trace)
            if returned:
                result = "" if value is None else _to_text(value)
                return ScriptOutcome("".join(interpreter.output), result, "")
    return ScriptOutcome("".join(interpreter.output), "", "")
