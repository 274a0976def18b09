"""A realistic multi-channel sample (``cdp produce --sample``): people who browse
anonymously then log in, use several devices, share a family tablet, type a junk
email, and write their phone number in different ways.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Eva",
    "Femi",
    "Gus",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Mo",
    "Nia",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vik",
]
LAST = [
    "Alvarez",
    "Brown",
    "Chen",
    "Diallo",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Khan",
    "Lopez",
    "Müller",
    "Nguyen",
    "Okafor",
    "Patel",
    "Rossi",
    "Silva",
]
TIERS = ["bronze", "silver", "gold", "platinum"]
SKUS = ["SHOE-42", "SHIRT-M", "BAG-01", "HAT-7", "SOCK-3", "COAT-L", "WATCH-9"]
JUNK_EMAIL = "test@test.com"
FAMILY_TABLET = "dev-family-tablet-0001"
AREA_CODES = [212, 206, 303, 312, 415, 512, 617, 646, 702, 718]


def phone_formats(area: int, exchange: int, line: int) -> list[str]:
    """One North American number written the ways people write it."""
    return [
        f"({area}) {exchange}-{line:04d}",
        f"+1 {area}-{exchange}-{line:04d}",
        f"{area}.{exchange}.{line:04d}",
        f"1{area}{exchange}{line:04d}",
    ]


@dataclass
class Person:
    index: int
    first: str
    last: str
    crm_id: str
    email: str
    phones: list[str]
    loyalty_id: str | None
    devices: list[str]
    cookies: list[str]


def _person(rng: random.Random, index: int) -> Person:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    area = rng.choice(AREA_CODES)
    exchange, line = rng.randint(220, 989), rng.randint(0, 9999)
    return Person(
        index=index,
        first=first,
        last=last,
        crm_id=f"CRM{100000 + index}",
        email=f"{first}.{last}.{index}@example.org".lower(),
        phones=phone_formats(area, exchange, line),
        loyalty_id=f"L{700000 + index}" if rng.random() < 0.7 else None,
        devices=[f"dev-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(rng.randint(1, 3))],
        cookies=[f"ecid-{rng.getrandbits(48):012x}" for _ in range(rng.randint(1, 3))],
    )


class SampleGenerator:
    """Deterministic for a seed; yields (channel, event) pairs in time order."""

    def __init__(self, customers: int = 200, seed: int = 7, start_ms: int = 1_790_000_000_000):
        self.rng = random.Random(seed)
        self.people = [_person(self.rng, i) for i in range(customers)]
        self.clock = start_ms
        # Two members of one family share a tablet (CONTRACT 4.2: it follows the last login).
        self.family_tablet = FAMILY_TABLET

    def _event(self, kind: str, identities: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        self.clock += self.rng.randint(200, 5_000)
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "timestamp": self.clock,
            "kind": kind,
            "identities": identities,
        }
        event.update(extra)
        return event

    @staticmethod
    def _id(namespace: str, value: str, primary: bool = False) -> dict[str, Any]:
        ident: dict[str, Any] = {"namespace": namespace, "id": value}
        if primary:
            ident["primary"] = True
        return ident

    def journey(self, p: Person) -> Iterator[tuple[str, dict[str, Any]]]:
        rng, ident = self.rng, self._id
        cookie = rng.choice(p.cookies)
        for _ in range(rng.randint(1, 3)):  # anonymous browsing
            yield (
                "web",
                self._event(
                    "experience",
                    [ident("ecid", cookie)],
                    event={"type": "commerce.productViews", "sku": rng.choice(SKUS)},
                ),
            )
        yield (
            "web",
            self._event(
                "experience",
                [ident("ecid", cookie), ident("email", p.email)],
                event={"type": "web.login"},
            ),
        )
        yield (
            "crm",
            self._event(
                "record",
                [
                    ident("crm_id", p.crm_id, True),
                    ident("email", p.email.upper()),
                    ident("phone", rng.choice(p.phones)),
                ],
                attributes={
                    "firstName": p.first,
                    "lastName": p.last,
                    "address": {"city": rng.choice(["Lyon", "Austin", "Osaka", "Lagos"])},
                },
            ),
        )
        for device in p.devices:
            yield (
                "mobile",
                self._event(
                    "experience",
                    [ident("device_id", device), ident("crm_id", p.crm_id)],
                    event={"type": "app.open"},
                    attributes={"appVersion": f"5.{rng.randint(0, 9)}"},
                ),
            )
        if p.loyalty_id:
            yield (
                "loyalty",
                self._event(
                    "record",
                    [ident("loyalty_id", p.loyalty_id, True), ident("crm_id", p.crm_id)],
                    attributes={
                        "loyalty": {"tier": rng.choice(TIERS), "points": rng.randint(0, 50_000)}
                    },
                ),
            )
            yield (
                "pos",
                self._event(
                    "experience",
                    [ident("loyalty_id", p.loyalty_id), ident("phone", rng.choice(p.phones))],
                    event={
                        "type": "commerce.purchases",
                        "sku": rng.choice(SKUS),
                        "amount": round(rng.uniform(5, 400), 2),
                    },
                ),
            )
        if rng.random() < 0.4:
            yield (
                "callcenter",
                self._event(
                    "experience",
                    [ident("phone", rng.choice(p.phones)), ident("crm_id", p.crm_id)],
                    event={"type": "call.inbound", "topic": rng.choice(["billing", "returns"])},
                ),
            )
        if rng.random() < 0.05:  # a junk email typed at the till: blocked, never links
            yield (
                "pos",
                self._event(
                    "experience",
                    [ident("email", JUNK_EMAIL), ident("crm_id", p.crm_id)],
                    event={"type": "receipt.email"},
                ),
            )

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        journeys = [self.journey(p) for p in self.people]
        parent, child = self.people[0], self.people[1]
        yield from self._tablet(parent)
        while journeys:
            j = self.rng.choice(journeys)
            step = next(j, None)
            if step is None:
                journeys.remove(j)
            else:
                yield step
        yield from self._tablet(child)

    def _tablet(self, p: Person) -> Iterator[tuple[str, dict[str, Any]]]:
        yield (
            "mobile",
            self._event(
                "experience",
                [self._id("device_id", self.family_tablet), self._id("crm_id", p.crm_id, True)],
                event={"type": "app.login"},
            ),
        )
        yield (
            "mobile",
            self._event(
                "experience",
                [self._id("device_id", self.family_tablet)],
                event={"type": "app.browse"},
            ),
        )
