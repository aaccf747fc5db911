"""An agent that does arithmetic through calculator tools.

Run it with the embedded defaults (SQLite file, local SmolLM2 model)::

    tether run calculator:agent "What is 12.5 times 8?"
    tether run calculator:agent "What is 3 times 4 plus 2?"

The tools' descriptions use the words people ask with ("times", "plus"): the local
model is offered, step by step, the tools the task's words name (``multiply``, then
``add`` with the product on offer), then only an answer (see docs/models.md).
"""

from __future__ import annotations

from tether import Agent, tool


@tool(idempotent=True, inline=True)
def add(a: float, b: float) -> float:
    """Add two numbers (a plus b).

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool(idempotent=True, inline=True)
def subtract(a: float, b: float) -> float:
    """Subtract two numbers (a minus b).

    Args:
        a: The number to subtract from.
        b: The number to subtract.
    """
    return a - b


@tool(idempotent=True, inline=True)
def multiply(a: float, b: float) -> float:
    """Multiply two numbers (a times b).

    Args:
        a: The first number.
        b: The second number.
    """
    return a * b


@tool(idempotent=True, inline=True)
def divide(a: float, b: float) -> float:
    """Divide two numbers (a divided by b).

    Args:
        a: The dividend.
        b: The divisor, not zero.
    """
    return a / b


agent = Agent(
    name="calculator",
    instructions="You are a calculator. Use a tool for the arithmetic, then give the result.",
    tools=[add, subtract, multiply, divide],
)
