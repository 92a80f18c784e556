"""A tiny, safe expression language for hospital-defined QC rule conditions.

QC officers write conditions such as::

    has("surgery") and not has("post_op")
    sex == "female" and age_years >= 14 and section("admission", "月经史") == ""
    length(section("admission", "主诉")) > 20
    hours_after_admit("first_course") > 8 or (stay_hours > 8 and not has("first_course"))

The text is tokenised and parsed by a hand-written recursive-descent parser into a small
tree of :class:`Node` s, then evaluated by walking the tree. Nothing is ever passed to
``eval``/``exec``/``compile``, there is no attribute access, no indexing, no loops, no
user-defined functions and no way to name a Python object: identifiers resolve only to the
facts handed in, and calls only to the whitelisted :data:`FUNCTIONS`. Input is bounded
(:data:`MAX_CHARS`, :data:`MAX_TOKENS`, :data:`MAX_DEPTH`), so a hostile expression can
neither recurse the interpreter to death nor allocate without bound (strings can be
compared and searched, never repeated or concatenated).

Every syntax or name error is an :class:`ExpressionError` carrying the 0-based character
``position`` it refers to, so the editor can point at it.

Grammar (precedence low → high)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not" "in") sum)?
    sum        := product (("+"|"-") product)*
    product    := unary (("*"|"/") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | STRING | true | false | null | NAME | NAME "(" args? ")"
                | "(" expr ")" | "[" items? "]"

Null (a fact that is unknown) compares false with everything except ``== null``; a
comparison between a number and a string is false rather than an error.

Why not a library: ``simpleeval`` and ``asteval`` start from Python's own ``ast`` and
disable dangerous features one by one (a deny-list); a 300-line allow-list grammar is
easier to audit, gives positions in its own terms, and needs no new dependency.

References
----------
STYLE.md §6 (rules are rows; conditions are data); OWASP "Code Injection" (never evaluate
user input as code).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medbrain.core.errors import InputError

MAX_CHARS = 2000
MAX_TOKENS = 400
MAX_DEPTH = 32
MAX_NUMBER = 1e15  # arithmetic beyond this is "unknown" (null), never a huge integer

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ",")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’"}


class ExpressionError(InputError):
    """A condition that does not parse or names something unknown; ``position`` is 0-based."""

    def __init__(self, position: int, problem: str, source: str = "rule") -> None:
        self.position = position
        super().__init__(source, "expression", f"position {position + 1}: {problem}")
        self.message = problem

    def pointer(self, text: str) -> str:
        """The expression with a caret under the offending character (for the editor)."""
        line = text.replace("\n", " ")
        return f"{line}\n{' ' * self.position}^"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num, str, name, op, kw, end
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the parsed tree: ``op`` is lit, var, call, list, not, neg, and, or, or a
    binary operator; ``args`` are child nodes; ``value`` a literal or a name."""

    op: str
    pos: int
    value: Any = None
    args: tuple[Node, ...] = ()


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_CHARS:
        raise ExpressionError(MAX_CHARS, f"expression longer than {MAX_CHARS} characters")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n\u3000":
            i += 1
            continue
        if len(tokens) >= MAX_TOKENS:
            raise ExpressionError(i, f"expression has more than {MAX_TOKENS} tokens")
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            j = i
            while j < n and (text[j].isdigit() or text[j] == "."):
                j += 1
            raw = text[i:j]
            if raw.count(".") > 1 or len(raw) > 20:
                raise ExpressionError(i, f"not a number: {raw!r}")
            tokens.append(Token("num", float(raw) if "." in raw else int(raw), i))
            i = j
            continue
        if ch in _QUOTES:
            close = _QUOTES[ch]
            j = text.find(close, i + 1)
            if j < 0:
                raise ExpressionError(i, "string is not closed")
            tokens.append(Token("str", text[i + 1 : j], i))
            i = j + 1
            continue
        if ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            tokens.append(Token("kw" if word in KEYWORDS else "name", word, i))
            i = j
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, i))
                i += len(op)
                break
        else:
            raise ExpressionError(i, f"unexpected character {ch!r}")
    tokens.append(Token("end", None, n))
    return tokens


@dataclass(frozen=True, slots=True)
class Function:
    """A whitelisted function: arity and implementation over the evaluation context."""

    arity: tuple[int, int]
    call: Callable[..., Any]
    help: str


class _Parser:
    def __init__(
        self, tokens: list[Token], functions: Mapping[str, Function], names: frozenset[str]
    ):
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.functions = functions
        self.names = names

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "kw" and self.tok.value == word

    def expect(self, op: str) -> Token:
        if not self.is_op(op):
            raise ExpressionError(self.tok.pos, f"expected {op!r}, found {self._show(self.tok)}")
        return self.take()

    @staticmethod
    def _show(tok: Token) -> str:
        if tok.kind == "end":
            return "end of expression"
        return repr(tok.value) if tok.kind != "str" else f'"{tok.value}"'

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(pos, f"nested deeper than {MAX_DEPTH} levels")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExpressionError(0, "expression is empty")
        node = self.expr()
        if self.tok.kind != "end":
            raise ExpressionError(self.tok.pos, f"unexpected {self._show(self.tok)}")
        return node

    def expr(self) -> Node:
        self.enter(self.tok.pos)
        node = self.or_()
        self.depth -= 1
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.is_kw("or"):
            pos = self.take().pos
            node = Node("or", pos, args=(node, self.and_()))
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.is_kw("and"):
            pos = self.take().pos
            node = Node("and", pos, args=(node, self.not_()))
        return node

    def not_(self) -> Node:
        if self.is_kw("not"):
            pos = self.take().pos
            self.enter(pos)
            node = Node("not", pos, args=(self.not_(),))
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum_()
        if self.is_op("==", "!=", "<", "<=", ">", ">="):
            tok = self.take()
            return Node(tok.value, tok.pos, args=(left, self.sum_()))
        if self.is_kw("in"):
            pos = self.take().pos
            return Node("in", pos, args=(left, self.sum_()))
        after = self.tokens[self.i + 1] if self.tok.kind != "end" else self.tok
        if self.is_kw("not") and after.kind == "kw" and after.value == "in":
            pos = self.take().pos
            self.take()
            return Node("not", pos, args=(Node("in", pos, args=(left, self.sum_())),))
        return left

    def sum_(self) -> Node:
        node = self.product()
        while self.is_op("+", "-"):
            tok = self.take()
            node = Node(tok.value, tok.pos, args=(node, self.product()))
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.is_op("*", "/"):
            tok = self.take()
            node = Node(tok.value, tok.pos, args=(node, self.unary()))
        return node

    def unary(self) -> Node:
        if self.is_op("-"):
            tok = self.take()
            self.enter(tok.pos)
            node = Node("neg", tok.pos, args=(self.unary(),))
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.take()
            return Node("lit", tok.pos, tok.value)
        if tok.kind == "kw" and tok.value in ("true", "false", "null"):
            self.take()
            return Node("lit", tok.pos, {"true": True, "false": False, "null": None}[tok.value])
        if tok.kind == "name":
            self.take()
            if self.is_op("("):
                return self.call(tok)
            if tok.value not in self.names:
                raise ExpressionError(tok.pos, f"unknown name {tok.value!r}{_known(self.names)}")
            return Node("var", tok.pos, tok.value)
        if self.is_op("("):
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        if self.is_op("["):
            start = self.take().pos
            items: list[Node] = []
            while not self.is_op("]"):
                item = self.expr()
                if item.op != "lit":
                    raise ExpressionError(item.pos, "list items must be literals")
                items.append(item)
                if not self.is_op("]", ","):
                    raise ExpressionError(
                        self.tok.pos, f"expected ',' or ']', found {self._show(self.tok)}"
                    )
                if self.is_op(","):
                    self.take()
            self.take()
            return Node("list", start, args=tuple(items))
        raise ExpressionError(tok.pos, f"unexpected {self._show(tok)}")

    def call(self, name: Token) -> Node:
        function = self.functions.get(name.value)
        if function is None:
            raise ExpressionError(
                name.pos, f"unknown function {name.value!r}{_known(self.functions)}"
            )
        self.take()  # "("
        args: list[Node] = []
        while not self.is_op(")"):
            args.append(self.expr())
            if not self.is_op(")", ","):
                raise ExpressionError(
                    self.tok.pos, f"expected ',' or ')', found {self._show(self.tok)}"
                )
            if self.is_op(","):
                self.take()
        self.take()
        low, high = function.arity
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low}–{high}"
            raise ExpressionError(
                name.pos, f"{name.value}() takes {want} argument(s), got {len(args)}"
            )
        return Node("call", name.pos, name.value, tuple(args))


def _known(names: Mapping[str, Any] | frozenset[str]) -> str:
    return f" (known: {', '.join(sorted(names))})"


@dataclass(slots=True)
class Trace:
    """What an evaluation touched: the first quoted span (document, start, end, text)."""

    spans: list[tuple[str, int, int, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed, validated condition; :meth:`evaluate` walks its tree."""

    text: str
    root: Node
    functions: Mapping[str, Function]

    def evaluate(self, facts: Mapping[str, Any], context: Any = None) -> Any:
        return _Evaluator(facts, self.functions, context).eval(self.root)


def parse(
    text: str, functions: Mapping[str, Function], names: Sequence[str] | frozenset[str]
) -> Expression:
    """Parse ``text``; raise :class:`ExpressionError` with a position on any problem."""
    if not isinstance(text, str):
        raise ExpressionError(0, "expression must be text")
    parser = _Parser(tokenize(text), functions, frozenset(names))
    return Expression(text, parser.parse(), functions)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Evaluator:
    def __init__(self, facts: Mapping[str, Any], functions: Mapping[str, Function], context: Any):
        self.facts = facts
        self.functions = functions
        self.context = context

    def eval(self, node: Node) -> Any:
        op = node.op
        if op == "lit":
            return node.value
        if op == "var":
            return self.facts.get(node.value)
        if op == "list":
            return [self.eval(a) for a in node.args]
        if op == "call":
            args = [self.eval(a) for a in node.args]
            return self.functions[node.value].call(self.context, *args)
        if op == "and":
            return bool(self.eval(node.args[0])) and bool(self.eval(node.args[1]))
        if op == "or":
            return bool(self.eval(node.args[0])) or bool(self.eval(node.args[1]))
        if op == "not":
            return not bool(self.eval(node.args[0]))
        if op == "neg":
            value = self.eval(node.args[0])
            return -value if _num(value) else None
        left, right = self.eval(node.args[0]), self.eval(node.args[1])
        if op == "in":
            if isinstance(right, list):
                return left in right
            if isinstance(right, str) and isinstance(left, str):
                return left in right
            return False
        if op in ("==", "!="):
            same = (
                left == right
                if type(left) is type(right) or (_num(left) and _num(right))
                else False
            )
            if left is None or right is None:
                same = left is right
            return same if op == "==" else not same
        if op in ("<", "<=", ">", ">="):
            if not (
                (_num(left) and _num(right)) or (isinstance(left, str) and isinstance(right, str))
            ):
                return False
            return {
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[op]
        if not (_num(left) and _num(right)):
            return None
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        elif op == "/":
            result = None if right == 0 else left / right
        else:  # pragma: no cover - the parser makes no other operator
            raise ExpressionError(node.pos, f"unknown operator {op!r}")
        if result is None or abs(result) > MAX_NUMBER or not math.isfinite(result):
            return None
        return result
