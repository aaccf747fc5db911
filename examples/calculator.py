"""An agent that does arithmetic through a calculator tool.

Run it with the embedded defaults (SQLite file, local SmolLM2 model)::

    tether run calculator:agent "What is 12.5 times 8?"
"""

from __future__ import annotations

import ast
import operator

from tether import Agent, tool

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"unsupported expression: {ast.dump(node)}")


@tool(idempotent=True, inline=True)
def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression such as `12.5 * 8` or `(3 + 4) / 2`.

    Args:
        expression: The arithmetic expression, with numbers and + - * / ** ( ).
    """
    value = _evaluate(ast.parse(expression.replace("x", "*").replace("×", "*"),
                                mode="eval").body)
    return f"{expression} = {value:g}"


agent = Agent(
    name="calculator",
    instructions=(
        "You are a calculator assistant. Use the calculate tool for any arithmetic, "
        "then answer with the result in one short sentence."
    ),
    tools=[calculate],
)
