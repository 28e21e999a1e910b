"""A team's own task for the tests: support tickets routed to a team (classification). Its domain file and its
traffic, learnable by a tiny model in seconds: each ticket names its problem with a word only its team's tickets use
(and, as real tickets do, some say exactly what others said)."""

from __future__ import annotations

import json
import random

TEAMS = {
    "billing": ["refund", "invoice", "charge", "payment", "price", "receipt"],
    "shipping": ["parcel", "delivery", "courier", "tracking", "package", "shipment"],
    "account": ["password", "login", "username", "profile", "signup", "settings"],
}
OPENINGS = ["Hello", "Hi", "Help", "Please", "Hey", "Urgent"]
CLOSINGS = ["thanks", "please", "today", "again", "now", "soon"]
SYSTEM = "Route the support ticket to one team. Answer exactly: team: billing, team: shipping or team: account."

DOMAIN_FILE = f'''
description = "Support tickets routed to the team that handles them"
system_prompt = "{SYSTEM}"
trigger_threshold = 10

[task]
type = "classification"
parse = 'team:\\s*(\\w+)'
labels = ["billing", "shipping", "account"]

[eval_set]
size = 60
max_share = 0.25

[gates]
min_score = 60
max_gap_to_teacher = 45
min_eval_examples = 15

[filters]
min_response_chars = 5
near_dup_threshold = "off"
'''


def ticket(team: str, rng: random.Random) -> str:
    return f"{rng.choice(OPENINGS)}: {rng.choice(TEAMS[team])} problem {rng.choice(CLOSINGS)}"


def records(n: int, *, seed: int = 0, start: int = 0, score: float = 95, numbered: bool = False) -> list[dict]:
    """`n` golden support conversations (one turn each), the teams in turn; the teacher's answer is the label.
    `numbered`: every ticket's text is unique (it names its ticket number), so a test can tell them apart."""
    rng = random.Random(seed)
    found = []
    for i in range(start, start + n):
        team = list(TEAMS)[i % len(TEAMS)]
        text = ticket(team, rng) + (f" (ticket {seed}-{i})" if numbered else "")
        found.append({"messages": [{"role": "system", "content": SYSTEM},
                                   {"role": "user", "content": text},
                                   {"role": "assistant", "content": f"team: {team}"}],
                      "score": score, "conversation_id": f"ticket-{seed}-{i}", "metadata": {"team": team}})
    return found


def lines(n: int, **options) -> bytes:
    return "\n".join(json.dumps(r) for r in records(n, **options)).encode()


def answers(records_: list[dict]) -> dict[str, str]:
    """Ticket → the teacher's answer: what a student that learnt the task says (the eval fake's `gold`)."""
    return {r["messages"][1]["content"]: r["messages"][2]["content"] for r in records_}
