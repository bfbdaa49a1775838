"""calculate: safe arithmetic on a text expression.

The expression is parsed with `ast.parse(..., mode="eval")` and the resulting tree is
walked by hand; nothing is ever passed to eval/exec or compiled to code. Only numbers,
+ - * / // % **, unary + and -, parentheses and a small whitelist of math functions and
constants are understood; everything else is refused with a ValueError saying what.
Sizes are checked *before* each costly operation, so `9**9**9` is refused instantly.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable

MAX_EXPRESSION_LENGTH = 1000
MAX_DEPTH = 100  # nesting of operations, e.g. -(-(-(...)))
MAX_INT_BITS = 3322  # about 1000 decimal digits
MAX_ROUND_DIGITS = 1000

Number = int | float


class CalcError(ValueError):
    """A refused or failed expression; the message says why."""


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int):
        raise CalcError("round() takes a whole number of digits, e.g. round(3.14159, 2)")
    if abs(ndigits) > MAX_ROUND_DIGITS:
        raise CalcError(f"round() digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(x, ndigits)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


# name -> (function, min args, max args)
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (math.sqrt, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "log": (_log, 1, 2),
    "exp": (math.exp, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY_SYMBOLS = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
}
_UNARY_SYMBOLS = {ast.Invert: "~", ast.Not: "not"}

# Friendly names for node types that are refused.
_REFUSED = {
    "Lambda": "lambda expressions",
    "Attribute": "attribute access",
    "Subscript": "indexing/subscripts",
    "ListComp": "comprehensions",
    "SetComp": "comprehensions",
    "DictComp": "comprehensions",
    "GeneratorExp": "comprehensions",
    "Compare": "comparisons",
    "BoolOp": "boolean operators (and/or)",
    "IfExp": "conditional expressions",
    "List": "lists",
    "Tuple": "tuples",
    "Set": "sets",
    "Dict": "dicts",
    "JoinedStr": "strings",
    "FormattedValue": "strings",
    "NamedExpr": "assignments (:=)",
    "Starred": "starred arguments",
    "Await": "await expressions",
    "Yield": "yield expressions",
    "YieldFrom": "yield expressions",
    "Slice": "slices",
}

_ALLOWED_HINT = (
    "allowed: numbers, + - * / // % **, parentheses, "
    + ", ".join(sorted(FUNCTIONS))
    + ", "
    + ", ".join(sorted(CONSTANTS))
)


def _too_large() -> CalcError:
    return CalcError("result is too large (integers are limited to about 1000 digits, floats to about 1.8e308)")


def _check(value: Any) -> Number:
    """Reject results that are not real numbers or are too big to be useful."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise _too_large()
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise CalcError("result is not a number (NaN)")
        if math.isinf(value):
            raise _too_large()
        return value
    if isinstance(value, complex):
        raise CalcError("result is not a real number (complex results are not supported)")
    raise CalcError(f"unsupported result type {type(value).__name__}")


def _pow(base: Number, exp: Number) -> Number:
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        # Size of the result in bits, estimated before computing anything.
        if exp * math.log2(abs(base)) > MAX_INT_BITS + 1:
            raise _too_large()
    elif isinstance(base, float) or isinstance(exp, float):
        if base < 0 and not float(exp).is_integer():
            raise CalcError("result is not a real number (negative number to a fractional power)")
    return base**exp


def _mul(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
        raise _too_large()
    return a * b


_BINARY_OPS: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _pow,
}
_UNARY_OPS: dict[type, Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _refuse(node: ast.AST) -> CalcError:
    kind = type(node).__name__
    if isinstance(node, ast.Attribute):
        return CalcError(f"attribute access ('.{node.attr}') is not allowed; {_ALLOWED_HINT}")
    label = _REFUSED.get(kind, f"{kind} expressions")
    return CalcError(f"{label} are not allowed; {_ALLOWED_HINT}")


def _eval(node: ast.AST, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise CalcError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)")

    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None:
            raise CalcError(f"{value!r} is not a number; {_ALLOWED_HINT}")
        if isinstance(value, (int, float)):
            return _check(value)
        if isinstance(value, complex):
            raise CalcError("complex numbers (like 2j) are not allowed")
        if isinstance(value, (str, bytes)):
            raise CalcError(f"strings are not allowed; {_ALLOWED_HINT}")
        raise CalcError(f"{value!r} is not allowed; {_ALLOWED_HINT}")

    if isinstance(node, ast.BinOp):
        op = _BINARY_OPS.get(type(node.op))
        if op is None:
            symbol = _BINARY_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise CalcError(f"operator '{symbol}' is not allowed; {_ALLOWED_HINT}")
        left = _eval(node.left, depth + 1)
        right = _eval(node.right, depth + 1)
        return _check(op(left, right))

    if isinstance(node, ast.UnaryOp):
        op1 = _UNARY_OPS.get(type(node.op))
        if op1 is None:
            symbol = _UNARY_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise CalcError(f"operator '{symbol}' is not allowed; {_ALLOWED_HINT}")
        return _check(op1(_eval(node.operand, depth + 1)))

    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise CalcError(f"'{node.id}' is a function; call it like {node.id}(2)")
        raise CalcError(f"unknown name '{node.id}'; {_ALLOWED_HINT}")

    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise _refuse(node.func)
            raise CalcError(f"only the listed functions can be called; {_ALLOWED_HINT}")
        name = node.func.id
        if name not in FUNCTIONS:
            raise CalcError(f"function '{name}' is not allowed; {_ALLOWED_HINT}")
        if node.keywords:
            raise CalcError(f"{name}() does not take keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise CalcError("starred arguments are not allowed")
        func, lo, hi = FUNCTIONS[name]
        if not lo <= len(node.args) <= hi:
            wanted = str(lo) if lo == hi else f"{lo} or {hi}"
            plural = "" if wanted == "1" else "s"
            raise CalcError(f"{name}() takes {wanted} argument{plural}, got {len(node.args)}")
        args = [_eval(a, depth + 1) for a in node.args]
        try:
            result = func(*args)
        except CalcError:
            raise
        except ValueError:  # math domain errors: sqrt(-1), log(0), ...
            shown = ", ".join(_format(a) for a in args)
            raise CalcError(f"{name}({shown}) is undefined (math domain error)") from None
        return _check(result)

    raise _refuse(node)


def _format(value: Number) -> str:
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"  # also turns -0.0 into 0
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")


def evaluate(expression: str) -> Number:
    """Evaluate `expression` and return the number (int or float)."""
    if not isinstance(expression, str):
        raise CalcError("expression must be a string, e.g. '2 * (3 + 4)'")
    text = expression.strip()
    if not text:
        raise CalcError("expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CalcError(f"expression is too long ({len(text)} characters; the limit is {MAX_EXPRESSION_LENGTH})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise CalcError(f"invalid expression{where}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):  # e.g. NUL bytes, absurd nesting
        raise CalcError("invalid expression") from None
    try:
        return _eval(tree.body, 0)
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except OverflowError:
        raise _too_large() from None
    except RecursionError:
        raise CalcError("expression is nested too deeply") from None


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression such as '2 * (3 + 4) / sqrt(16)' and return the result as text."""
    return _format(evaluate(expression))
