"""The data flow as the running app wires it: each agent, the topics it reads (from
Faust), the stage it calls, the topics it writes (from the sender), and the HTTP routes.
``cdp topology`` prints it, as Kafka Streams prints its topology."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faust
from faust.types import AgentT


@dataclass(frozen=True)
class Flow:
    agent: AgentT
    stage: str  # what the agent calls, in the order of the data flow
    writes: tuple[str, ...]


def render(app: faust.App, flows: Sequence[Flow]) -> str:
    lines = []
    for flow in flows:
        reads = ", ".join(flow.agent.channel.topics)  # type: ignore[attr-defined]
        lines += [
            f"agent {flow.agent.name}",
            f"  reads   {reads}",
            f"  calls   {flow.stage}",
            f"  writes  {', '.join(flow.writes)}",
        ]
    router = app.web.web_app.router  # type: ignore[attr-defined]
    routes = sorted({route.resource.canonical for route in router.routes() if route.resource})
    lines.append(f"http    {' '.join(routes)}")
    return "\n".join(lines)
