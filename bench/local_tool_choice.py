"""How often the embedded SmolLM2-135M picks the right tool, with and without narrowing.

Twenty requests over small tool sets (weather/time/arithmetic/e-mail/search); each
answer is a grammar-constrained call, so it is always valid: what varies is whether
it names the expected tool. Run with and without ``narrow_tools`` (the grammar admits
only the tool sharing the most words with the request, when exactly one does).
Prints one JSON object per figure and writes bench/results/local_tool_choice.jsonl.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, write_results  # noqa: E402

from tether.core import Message, ToolSpec  # noqa: E402
from tether.models import LocalModel, ModelRequest, ModelSettings  # noqa: E402


def _tool(name: str, description: str, **properties: str) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": {k: {"type": v} for k, v in properties.items()},
            "required": list(properties),
        },
    )


WEATHER = _tool("get_weather", "Get the current weather for a city.", city="string")
TIME = _tool("get_time", "Get the current time in a timezone.", timezone="string")
ADD = _tool("add", "Add two numbers.", a="number", b="number")
SUB = _tool("subtract", "Subtract b from a.", a="number", b="number")
MUL = _tool("multiply", "Multiply two numbers (a times b).", a="number", b="number")
DIV = _tool("divide", "Divide a by b.", a="number", b="number")
EMAIL = _tool("send_email", "Send an email to a recipient.", to="string", subject="string",
              body="string")  # fmt: skip
SEARCH = _tool("search_web", "Search the web for a query.", query="string")
CALC = (ADD, SUB, MUL, DIV)

CASES: list[tuple[tuple[ToolSpec, ...], str, str]] = [
    ((WEATHER, ADD), "What is 12 plus 30?", "add"),
    ((WEATHER, ADD, TIME), "What's the weather like in Tokyo?", "get_weather"),
    ((WEATHER, ADD, TIME), "What time is it in Europe/Berlin?", "get_time"),
    ((ADD, WEATHER, TIME), "Please add 7 and 5.", "add"),
    ((TIME, WEATHER, ADD), "Is it raining in London?", "get_weather"),
    ((TIME, ADD, WEATHER), "Weather in Oslo?", "get_weather"),
    ((WEATHER, TIME, ADD), "Compute 3 + 4", "add"),
    ((WEATHER, TIME, ADD), "What is the sum of 2 and 9?", "add"),
    ((ADD, TIME, WEATHER), "How hot is it in Madrid today?", "get_weather"),
    ((WEATHER, ADD, TIME), "What's the time in Tokyo?", "get_time"),
    (CALC, "What is 12.5 times 8?", "multiply"),
    (CALC, "What is 7 plus 5?", "add"),
    (CALC, "What is 100 divided by 4?", "divide"),
    (CALC, "What is 9 minus 3?", "subtract"),
    (CALC, "Multiply 6 by 7.", "multiply"),
    (CALC, "Subtract 4 from 10.", "subtract"),
    ((EMAIL, SEARCH, WEATHER), "Email bob@example.com that the meeting moved to 3pm.",
     "send_email"),  # fmt: skip
    ((EMAIL, SEARCH, WEATHER), "Search the web for the tallest building in the world.",
     "search_web"),  # fmt: skip
    ((EMAIL, SEARCH, WEATHER), "Find information about Python 3.13 release notes.", "search_web"),
    ((SEARCH, EMAIL, WEATHER), "Will it be sunny in Rome?", "get_weather"),
]


async def _accuracy(narrow: bool) -> int:
    model = LocalModel(narrow_tools=narrow)
    right = 0
    for tools, question, expected in CASES:
        response = await model.complete(
            ModelRequest(messages=(Message.user(question),), tools=tools,
                         settings=ModelSettings(tool_choice="required"))  # fmt: skip
        )
        right += response.message.tool_calls[0].name == expected
    return right


def measure() -> list[dict[str, Any]]:
    """Right-tool rate of the default local model, narrowing off and on."""
    lines = []
    for narrow in (False, True):
        right = asyncio.run(_accuracy(narrow))
        lines.append(
            emit("local_right_tool_rate", right / len(CASES), "fraction", narrow_tools=narrow,
                 cases=len(CASES), right=right, model="SmolLM2-135M-Instruct.Q4_1")  # fmt: skip
        )
    return lines


if __name__ == "__main__":
    write_results(__file__, measure())
