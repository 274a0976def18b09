"""A hostile multi-channel data set with ground truth (``cdp bench quality``).

People live in households that share a tablet, check in at store kiosks that dozens
of others use, type their email in mixed case with spaces and their phone number in
four ways; CRM rows carry placeholder emails, phone numbers are recycled, a few people
log in with a second email that no record carries, and some events arrive out of order.
Every identity's owners are known (``Dataset.owners``, by normalised key), so the
output can be scored; shared identities (tablet, kiosk, placeholder, recycled number)
have several owners and are left out of the scoring.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cdp_tools.sample import AREA_CODES, FIRST, LAST, phone_formats

CHANNELS = ("web", "mobile", "crm", "loyalty", "pos", "callcenter", "kiosk")
# Placeholders clerks type when a customer has no email: blocked or not, none may link.
PLACEHOLDERS = ("test@test.com", "noemail@noemail.com", "none@store.example", "no@email.example")
DAY_MS = 86_400_000


@dataclass
class Person:
    index: int
    crm_id: str | None
    email: str  # canonical (lower case), "" for a store customer without one
    email_shown: str
    phone: tuple[int, int, int] | None
    loyalty_id: str | None
    devices: list[str]
    cookies: list[str]
    second_email: str | None = None  # a work email no record carries
    household: list[str] = field(default_factory=list)  # shared tablets


@dataclass
class Dataset:
    """(channel, envelope) pairs in production order and each identity key's owners."""

    events: list[tuple[str, dict[str, Any]]]
    owners: dict[str, set[int]]


class Generator:
    def __init__(self, people: int, seed: int, start_ms: int) -> None:
        self.rng = random.Random(seed)
        self.start = start_ms
        self.owners: dict[str, set[int]] = defaultdict(set)
        self.timed: list[tuple[int, str, dict[str, Any]]] = []
        self.people = [self._person(i) for i in range(people)]
        self.kiosks = [
            f"kiosk-{self.rng.getrandbits(40):010x}" for _ in range(max(1, people // 150))
        ]
        self._households()
        self._recycle_phones()

    # -- people ----------------------------------------------------------------------------
    def _person(self, i: int) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}.{i}@{rng.choice(['example.org', 'mail.example'])}".lower()
        shown = "".join(c.upper() if rng.random() < 0.3 else c for c in email)
        crm_id = f"CRM-{i:06d}" if rng.random() < 0.75 else None
        if crm_id and rng.random() < 0.25:  # a store customer who never gave an email
            email = ""
        return Person(
            index=i,
            crm_id=crm_id,
            email=email,
            email_shown=shown,
            phone=(rng.choice(AREA_CODES), rng.randint(220, 989), rng.randint(0, 9999))
            if rng.random() < 0.7
            else None,
            loyalty_id=f"L{rng.getrandbits(32):08X}" if rng.random() < 0.45 else None,
            devices=[
                f"dev-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(rng.randint(0, 2))
            ],
            # Without an email there is no web login: such a person shops in store only.
            cookies=[
                f"ecid-{rng.getrandbits(56):014x}" for _ in range(rng.randint(1, 3) if email else 0)
            ],
            second_email=f"{first}.{i}@work.example".lower() if rng.random() < 0.02 else None,
        )

    def _households(self) -> None:
        """Households of 2-4 adults; most share a tablet, some a home computer's cookie."""
        order = list(range(len(self.people)))
        self.rng.shuffle(order)
        i = 0
        while i < len(order):
            size = self.rng.choice([1, 1, 1, 2, 2, 3, 4])
            members = [self.people[j] for j in order[i : i + size]]
            i += size
            if len(members) > 1 and self.rng.random() < 0.8:
                tablet = f"tab-{uuid.UUID(int=self.rng.getrandbits(128))}"
                home_cookie = f"ecid-home-{self.rng.getrandbits(48):012x}"
                for p in members:
                    p.household = [tablet, home_cookie]

    def _recycle_phones(self) -> None:
        """2% of numbers are recycled: a second person (without one) uses it too."""
        with_phone = [p for p in self.people if p.phone]
        for p in self.rng.sample(with_phone, len(with_phone) // 50):
            heir = self.rng.choice(self.people)
            if heir is not p and heir.phone is None:
                heir.phone = p.phone

    # -- identities as events spell them ---------------------------------------------------
    def _own(self, p: Person, namespace: str, canonical: str) -> None:
        self.owners[f"{namespace}:{canonical}"].add(p.index)

    def email(self, p: Person, address: str | None = None) -> dict[str, Any] | None:
        canonical = address or p.email
        if not canonical:
            return None
        self._own(p, "email", canonical)
        shown = p.email_shown if address is None else address
        pad = self.rng.choice(["", "", " ", "  "])
        return {"namespace": "email", "id": f"{pad}{shown}{self.rng.choice(['', ' '])}"}

    def phone(self, p: Person) -> dict[str, Any] | None:
        if p.phone is None:
            return None
        area, exchange, line = p.phone
        self._own(p, "phone", f"+1{area}{exchange}{line:04d}")
        return {"namespace": "phone", "id": self.rng.choice(phone_formats(area, exchange, line))}

    def ident(self, p: Person, namespace: str, value: str) -> dict[str, Any]:
        canonical = value.upper() if namespace == "loyalty_id" else value
        self._own(p, namespace, canonical)
        return {"namespace": namespace, "id": value}

    def login(self, p: Person) -> dict[str, Any] | None:
        """An app login: with whichever credential the person picks this time."""
        ids = {"crm_id": p.crm_id, "loyalty_id": p.loyalty_id}
        choices = [n for n, v in ids.items() if v] + ["email"] * bool(p.email)
        pick = self.rng.choice(choices + ["phone"] * bool(p.phone))
        if pick == "email":
            return self.email(p)
        if pick == "phone":
            return self.phone(p)
        return self.ident(p, pick, ids[pick] or "")

    def emit(self, ts: int, channel: str, kind: str, idents: list[Any], etype: str) -> None:
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "timestamp": ts,
            "kind": kind,
            "identities": [i for i in idents if i],
            "event": {"type": etype},
        }
        if kind == "record":
            event["attributes"] = {"rev": self.rng.randint(0, 1000)}
        self.timed.append((ts, channel, event))

    # -- journeys --------------------------------------------------------------------------
    def journey(self, p: Person) -> None:
        rng = self.rng
        t0 = self.start + rng.randint(0, 20 * DAY_MS)

        def at(days: float = 10) -> int:
            return t0 + int(rng.uniform(0, days) * DAY_MS)

        if p.crm_id:
            email = self.email(p)
            placeholder = rng.random() < 0.04  # the clerk typed a placeholder instead
            if placeholder:
                holder = rng.choice(PLACEHOLDERS)
                self._own(p, "email", holder)
                email = {"namespace": "email", "id": holder}
            if rng.random() < 0.25:  # an old store sign-up: no email on the row
                email = None
                fixed = [self.ident(p, "crm_id", p.crm_id), self.email(p)]
                self.emit(at(), "mobile", "record", fixed, "app.profileUpdate")
            row = [self.ident(p, "crm_id", p.crm_id), email, self.phone(p)]
            self.emit(at(2), "crm", "record", row, "crm.update")
            if placeholder:  # the call centre corrects it later
                fixed = [self.ident(p, "crm_id", p.crm_id), self.email(p)]
                self.emit(at(2) + 3 * DAY_MS, "callcenter", "record", fixed, "crm.emailFixed")
        if p.loyalty_id:
            link = self.ident(p, "crm_id", p.crm_id) if p.crm_id else self.email(p)
            self.emit(
                at(),
                "loyalty",
                "record",
                [self.ident(p, "loyalty_id", p.loyalty_id), link],
                "loyalty.join",
            )
        for cookie in p.cookies:
            for _ in range(rng.randint(0, 2)):
                self.emit(
                    at(), "web", "experience", [self.ident(p, "ecid", cookie)], "web.pageView"
                )
            self.emit(
                at(),
                "web",
                "experience",
                [self.ident(p, "ecid", cookie), self.email(p)],
                "web.login",
            )
        for device in p.devices:
            login = self.login(p)
            self.emit(
                at(),
                "mobile",
                "experience",
                [self.ident(p, "device_id", device), login],
                "app.login",
            )
            for _ in range(rng.randint(0, 3)):
                self.emit(
                    at(), "mobile", "experience", [self.ident(p, "device_id", device)], "app.open"
                )
        if p.second_email and (p.devices or p.cookies):  # same device, unconnected credential
            own = [self.ident(p, "device_id", d) for d in p.devices[:1]] or [
                self.ident(p, "ecid", p.cookies[0])
            ]
            work = self.email(p, p.second_email)
            self.emit(at(), "web", "experience", [*own, work], "web.login")
        if p.household:
            self._household_use(p, at)
        if p.loyalty_id or p.phone:
            # At least once when only a receipt can join the phone to the person.
            for _ in range(rng.randint(0 if p.crm_id else 1, 2)):
                # The till asks for the card, else sends an e-receipt to the email.
                card = self.ident(p, "loyalty_id", p.loyalty_id) if p.loyalty_id else None
                ids = [card or self.email(p), self.phone(p)]
                self.emit(at(), "pos", "experience", ids, "commerce.purchases")
        if p.phone and p.crm_id and rng.random() < 0.4:
            self.emit(
                at(),
                "callcenter",
                "experience",
                [self.phone(p), self.ident(p, "crm_id", p.crm_id)],
                "call.inbound",
            )
        if (p.loyalty_id or p.phone) and rng.random() < 0.35:
            self._kiosk_visit(p, at())

    def _household_use(self, p: Person, at: Any) -> None:
        tablet, home = p.household
        for _ in range(self.rng.randint(1, 3)):
            login = self.login(p)
            ts = at()
            self.emit(
                ts, "mobile", "experience", [self.ident(p, "device_id", tablet), login], "app.login"
            )
            for k in range(self.rng.randint(0, 2)):  # anonymous use after the login
                self.emit(
                    ts + 60_000 * (k + 1),
                    "mobile",
                    "experience",
                    [self.ident(p, "device_id", tablet)],
                    "app.open",
                )
        if p.email and self.rng.random() < 0.5:
            ts = at()
            self.emit(
                ts, "web", "experience", [self.ident(p, "ecid", home), self.email(p)], "web.login"
            )

    def _kiosk_visit(self, p: Person, ts: int) -> None:
        kiosk = self.rng.choice(self.kiosks)
        card = self.ident(p, "loyalty_id", p.loyalty_id) if p.loyalty_id else self.phone(p)
        self.emit(
            ts, "kiosk", "experience", [self.ident(p, "device_id", kiosk), card], "kiosk.checkin"
        )
        self.emit(
            ts + 30_000, "kiosk", "experience", [self.ident(p, "device_id", kiosk)], "kiosk.browse"
        )

    def dataset(self, out_of_order: float = 0.05) -> Dataset:
        for p in self.people:
            self.journey(p)
        self.timed.sort(key=lambda item: item[0])
        ordered = [(channel, event) for _, channel, event in self.timed]
        # Out of order: some events are produced a while after later ones.
        late = [i for i in range(len(ordered)) if self.rng.random() < out_of_order]
        for i in reversed(late):
            item = ordered.pop(i)
            ordered.insert(min(len(ordered), i + self.rng.randint(5, 500)), item)
        return Dataset(ordered, dict(self.owners))


def generate(people: int, seed: int, start_ms: int) -> Dataset:
    return Generator(people, seed, start_ms).dataset()
