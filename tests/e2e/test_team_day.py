"""A support team's day through the running daemon: two brands, three agents on two lines,
customers writing in English and Russian, answers from the agents' mail clients, forwards on
a customer's behalf (attached and inline), a ticket an agent opens by writing first (`#to`),
a merge, an escalation, surveys, a reopen and the timers. Every mail the desk writes is checked
(From, To, Cc, envelope) and counted, and the day's report is worked out by hand.

The day is a list of steps (`DAY`). A step sends mail as a person would and says which
mails the desk must write in answer (`Day.expect`); nothing else may leave. Tickets are
known by name (`Day.tickets`), so a step added later shifts no number. The figures at the
end follow from the steps; a new step adds its tickets, answers and times to them.
"""

from __future__ import annotations

import json
import re
import smtplib
import sqlite3
import statistics
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import Daemon, Sink
from tests.helpers import brand2_templates, free_port, mail, parse_mail, postdesk

SUPPORT = "support@example.com"
BRAND2 = "help@brand2.example"
EXAMPLE_NAME, BRAND2_NAME = "Example Support", "Brand2 Help"
ANNA, BORIS, VERA = "anna@example.com", "boris@example.com", "vera@example.com"
ALICE, BOB = "alice@customer.example", "bob@customer.example"
IVAN, OLGA = "ivan@klient.example", "olga@klient.example"
PETR, CAROL = "petr@klient.example", "carol@partner.example"

TRUSTED_MX = (
    b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    b"Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
    b"\tby mx.example.com (Postfix) with ESMTPS id 4Xq2Lm0Zc9z9sRf\r\n"
)
"""What the team's own MX writes above an agent's mail that it signed: the proof of a
mail an agent writes fresh, with no reply token of ours."""


@dataclass(frozen=True)
class Mail:
    """A mail the desk must write: who it is from (display name and address), to and
    copied, and a piece of its subject."""

    sender: tuple[str, str]
    to: str
    subject: str
    cc: tuple[str, ...] = ()


@dataclass
class Day:
    """The desk as the day's people see it: the running daemon, its database and the sink
    that stands for everyone's mail server, with what happened so far."""

    daemon: Daemon
    config: Path
    database: Path
    sink: Sink
    tickets: dict[str, int] = field(default_factory=dict)
    """Ticket number by the name the steps give it."""
    mails: list[EmailMessage] = field(default_factory=list)
    """Every mail the desk wrote so far, each checked against an expectation."""
    moments: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    """Wall-clock bounds of what happened: (just before the mail went, just after its 250)."""
    start: datetime = field(default_factory=lambda: datetime.now(UTC))

    def send(self, message: EmailMessage | bytes, mail_from: str, moment: str = "") -> str:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        before = datetime.now(UTC)
        with smtplib.SMTP("127.0.0.1", self.daemon.smtp_port) as client:
            client.ehlo("client.example")
            client.mail(mail_from)
            client.rcpt(self.recipient(raw))
            code, reply = client.data(raw)
        assert code == 250, reply
        if moment:
            self.moments[moment] = (before, datetime.now(UTC))
        return reply.decode()

    @staticmethod
    def recipient(raw: bytes) -> str:
        """The envelope recipient: the support address (with its tag) the mail is to."""
        for _, address in getaddresses([str(parse_mail(raw)["To"])]):
            local, _, domain = address.partition("@")
            if f"{local.partition('+')[0]}@{domain}" in (SUPPORT, BRAND2):
                return address
        raise AssertionError(f"no support address in {raw[:200]!r}")

    def expect(self, *wanted: Mail) -> list[EmailMessage]:
        """The mails this step made the desk write, in the order of ``wanted``: exactly these,
        from, to and copied as said, and nothing more. The mails of one step differ in From,
        To or Cc, so each expectation finds one."""
        total = len(self.mails) + len(wanted)
        assert self.sql("SELECT count(*) FROM outbox") == [(total,)]  # all queued before 250
        arrived = self.sink.wait_for(total)
        assert len(self.sink.messages) == total
        new = arrived[len(self.mails) :]
        envelopes = [sorted(rcpts) for _, rcpts, _ in self.sink.messages[len(self.mails) :]]
        found: list[EmailMessage] = []
        for want in wanted:
            (match,) = [m for m in new if _shape(m) == _shape_of(want)]
            assert want.subject in str(match["Subject"]), (want, match["Subject"])
            assert envelopes[new.index(match)] == sorted([want.to, *want.cc])
            assert match["Bcc"] is None
            found.append(match)
        self.mails += new
        return found

    def sweep(self, at: datetime, **counts: int) -> None:
        """`postdesk sweep --now` and `send-outbox --now`: the timers run as of ``at``."""
        done = json.loads(self.cli("sweep", "--now", at.isoformat()).stdout)
        assert {k: v for k, v in done.items() if v} == counts
        self.cli("send-outbox", "--now", at.isoformat())

    def cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        done = postdesk(self.config, *args)
        assert done.returncode == 0, done.stderr.decode()
        return done

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as conn:
            return conn.execute(query, params).fetchall()

    def ticket(self, name: str) -> tuple[Any, ...]:
        """(status, queue, assignee, reopen_count, csat_score) of a ticket."""
        (row,) = self.sql(
            "SELECT status, queue, assignee, reopen_count, csat_score FROM tickets "
            "WHERE number = ?",
            self.tickets[name],
        )
        return row

    def between(self, start: str, end: str | datetime) -> tuple[float, float]:
        """The shortest and longest seconds the wall clock allows from one moment of the day
        to another (or to an instant the timers ran at)."""
        first, last = self.moments[start]
        until = (end, end) if isinstance(end, datetime) else self.moments[end]
        return (until[0] - last).total_seconds(), (until[1] - first).total_seconds()

    def opened(self, name: str, ack: EmailMessage) -> int:
        """The acknowledgement names the new ticket's number."""
        found = re.search(r"\[#(\d+)\]", str(ack["Subject"]))
        assert found, ack["Subject"]
        self.tickets[name] = int(found.group(1))
        return self.tickets[name]

    def latest(self, to: str, about: str, saying: str = "") -> EmailMessage:
        """The last mail the desk wrote to one person about a ticket (whose subject says
        ``saying``: which notification an agent answers)."""
        tag = f"[#{self.tickets[about]}]" + (f" {saying}" if saying else "")
        return [m for m in self.mails if _to(m) == to and tag in str(m["Subject"])][-1]


def _to(message: EmailMessage) -> str:
    return parseaddr(str(message["To"]))[1].lower()


def _shape(message: EmailMessage) -> tuple[Any, ...]:
    name, address = parseaddr(str(message["From"]))
    copies = sorted(a.lower() for _, a in getaddresses(message.get_all("Cc", [])))
    return (name, address.lower()), _to(message), copies


def _shape_of(want: Mail) -> tuple[Any, ...]:
    return want.sender, want.to, sorted(want.cc)


def staff(brand_address: str) -> tuple[str, str]:
    """Notifications and notices leave from the brand's address, with no display name."""
    return ("", brand_address)


def brand(brand_address: str) -> tuple[str, str]:
    """Automatic mail to customers carries the brand's name."""
    return ({SUPPORT: EXAMPLE_NAME, BRAND2: BRAND2_NAME}[brand_address], brand_address)


def by(agent: str, brand_address: str) -> tuple[str, str]:
    """An agent's answer: the agent's name beside the brand's, from the brand's address."""
    name = {ANNA: "Anna", BORIS: "Boris", VERA: "Vera"}[agent]
    return (f"{name} ({brand(brand_address)[0]})", brand_address)


def relayed(day: Day, agent: str, brand_address: str, customer: str, subject: str) -> EmailMessage:
    """The agent's answer went to the customer alone, from the brand under the agent's name,
    and the agent got the summary. Returns the answer as the customer got it."""
    relay, _ = day.expect(
        Mail(by(agent, brand_address), customer, subject),
        Mail(staff(brand_address), agent, "your mail was applied"),
    )
    return relay


def answer_from(day: Day, agent: str, notice: EmailMessage, body: str, moment: str = "") -> str:
    """An agent answers a notification from their own mail client: to its Reply-To (the
    agent's token), quoting it."""
    quoted = "\n".join(f"> {line}" for line in notice.get_content().splitlines()[:3])
    reply = mail(
        sender=f"{agent.split('@')[0].title()} <{agent}>",
        to=str(notice["Reply-To"]),
        subject=f"Re: {notice['Subject']}",
        body=f"{body}\n\nOn Tuesday the desk wrote:\n{quoted}\n",
        In_Reply_To=str(notice["Message-ID"]),
    )
    return day.send(reply, agent, moment)


def customer_reply(
    day: Day, customer: str, ours: EmailMessage, body: str, moment: str = "", cc: str = ""
) -> str:
    """A customer answers our mail: to its Reply-To, in its thread, quoting it."""
    reply = mail(
        sender=customer,
        to=str(ours["Reply-To"]),
        subject=f"Re: {ours['Subject']}",
        body=f"{body}\n\n> {ours.get_content().splitlines()[0]}\n",
        In_Reply_To=str(ours["Message-ID"]),
        References=str(ours["Message-ID"]),
        **({"Cc": cc} if cc else {}),
    )
    return day.send(reply, customer, moment)


def agent_writes(
    day: Day,
    agent: str,
    to: str,
    subject: str,
    body: str,
    moment: str = "",
    attached: EmailMessage | None = None,
) -> str:
    """An agent's fresh mail to a brand, with no token of ours: the proof is the DKIM pass
    that the team's MX writes above it. ``attached`` travels as a message/rfc822 part, as
    "forward as attachment" sends it. Lines end in CRLF: smtplib sends bytes as they are, and
    a long mail with bare LFs is one line too long for the listener."""
    fresh = mail(
        sender=f"{agent.split('@')[0].title()} <{agent}>", to=to, subject=subject, body=body
    )
    if attached is not None:
        fresh.add_attachment(attached)
    return day.send(TRUSTED_MX + fresh.as_bytes(policy=policy.SMTP), agent, moment)


def survey_click(day: Day, customer: str, survey: EmailMessage, score: int) -> str:
    """The customer clicks one answer of the survey: a mail to its link, with no words."""
    found = re.search(rf"- {score}: mailto:(\S+)", survey.get_content())
    assert found, survey.get_content()
    address, _, query = found.group(1).partition("?")
    click = mail(sender=customer, to=address, subject=unquote(query.partition("=")[2]), body="")
    return day.send(click, customer)


# The day. Times are the daemon's own (wall clock) until the last steps, where the timers
# run days later with `postdesk sweep --now`.


def customer_writes(
    day: Day, name: str, sender: str, to: str, subject: str, body: str, **headers: str
) -> EmailMessage:
    """A new mail to a brand: a ticket, its acknowledgement from the brand, and the first
    line's two agents told (nobody is assigned yet). Returns the acknowledgement."""
    first = mail(sender=sender, to=to, subject=subject, body=body, **headers)
    customer = parseaddr(sender)[1]
    assert "ticket_created" in day.send(first, customer, f"{name} opened")
    ack, *_ = day.expect(
        Mail(brand(to), customer, subject),
        Mail(staff(to), ANNA, f"new ticket: {subject}"),
        Mail(staff(to), BORIS, f"new ticket: {subject}"),
    )
    day.opened(name, ack)
    return ack


def alice_writes(day: Day) -> None:
    """Alice, a customer of the English brand, copies her colleague Bob."""
    ack = customer_writes(
        day,
        "login",
        f"Alice <{ALICE}>",
        SUPPORT,
        "Cannot log in to my account",
        "Hello, since this morning the login page says my password is wrong.",
        Cc=f"Bob <{BOB}>",
    )
    text = ack.get_content()
    assert f"registered as ticket #{day.tickets['login']}." in text
    assert "We aim to answer within 1 hour." in text  # the normal priority's first response
    assert "Our working hours: Mon–Sun 00:00–24:00 (UTC)." in text


def ivan_writes(day: Day) -> None:
    """Ivan writes to the Russian brand: its own acknowledgement template answers."""
    ack = customer_writes(
        day,
        "invoice",
        f"Иван <{IVAN}>",
        BRAND2,
        "Не приходит счёт за ноябрь",
        "Здравствуйте! Счёт за ноябрь так и не пришёл на почту.",
    )
    assert str(ack["Subject"]).endswith("Brand2: Не приходит счёт за ноябрь")
    assert f"Brand2 получил обращение #{day.tickets['invoice']}." in ack.get_content()


def olga_writes(day: Day) -> None:
    customer_writes(
        day,
        "export",
        f"Ольга <{OLGA}>",
        BRAND2,
        "Ошибка при выгрузке отчёта",
        "Добрый день. Выгрузка отчёта в Excel обрывается с ошибкой 500.",
    )


def alice_writes_again(day: Day) -> None:
    """Alice, impatient, writes a new mail about the same problem: a duplicate ticket."""
    customer_writes(
        day,
        "duplicate",
        f"Alice <{ALICE}>",
        SUPPORT,
        "Login still broken",
        "Is anybody there? I still cannot log in.",
    )


def forward_opened(day: Day, name: str, reply: str, agent: str, ack: Mail) -> EmailMessage:
    """A forward on behalf opened a ticket for the customer: the brand acknowledges it to
    the customer (`agents.forward_ack`), and the agent, its assignee, hears what was done;
    nobody else is told (the note's only colleague is its writer). Returns the summary."""
    assert "ticket_created" in reply
    told, summary = day.expect(ack, Mail(staff(ack.sender[1]), agent, "your mail was applied"))
    number = day.opened(name, told)
    assert f"ticket #{number} opened for {ack.to}" in summary.get_content()
    assert "kept as an internal note" in summary.get_content()
    assert day.ticket(name) == ("new", "first", agent, 0, None)
    return summary


def ticket_view(day: Day, name: str) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(
        day.cli("tickets", "show", str(day.tickets[name]), "--json").stdout
    )
    return view


def boris_forwards_petrs_mail(day: Day) -> None:
    """Olga's colleague Pyotr wrote to Boris himself; Boris forwards it as an attachment to
    the Russian brand, with a word for the team above it. Pyotr is the requester, his mail
    the ticket's first, Boris's word a note."""
    petrs = mail(
        sender=f"Пётр <{PETR}>",
        to=f"Boris <{BORIS}>",
        subject="Не работает импорт контактов",
        body="Борис, добрый день! Импорт контактов из CSV зависает на 99 %.",
    )
    reply = agent_writes(
        day,
        BORIS,
        BRAND2,
        "Fwd: Не работает импорт контактов",
        "Коллега Ольги, написал мне напрямую. Возьму сам.",
        "petr opened",
        attached=petrs,
    )
    forward_opened(day, "import", reply, BORIS, Mail(brand(BRAND2), PETR, "Не работает импорт"))
    customer, note = [m for m in ticket_view(day, "import")["messages"] if m["direction"] == "in"]
    assert (customer["kind"], customer["from"], customer["author"]) == ("customer", PETR, None)
    assert "зависает на 99 %" in customer["body"]
    assert (note["kind"], note["from"], note["author"]) == ("note", BORIS, BORIS)
    assert "Возьму сам" in note["body"] and "зависает" not in note["body"]


OUTLOOK_FORWARD = """#requester {requester}
Carol phoned me about this too; Outlook left her address out.

________________________________
From: Carol White
Sent: Monday, November 30, 2026 4:12 PM
To: Anna
Subject: Invoice shows the wrong VAT number

Hi Anna,
our invoice for November shows last year's VAT number.

Carol
"""
"""Outlook's inline forward of an address-book contact: a name, no address."""


def anna_forwards_carols_mail(day: Day) -> None:
    """Anna forwards inline from Outlook to the English brand; the forward names Carol
    without her address, so `#requester` gives it."""
    reply = agent_writes(
        day,
        ANNA,
        SUPPORT,
        "FW: Invoice shows the wrong VAT number",
        OUTLOOK_FORWARD.format(requester=CAROL),
        "carol opened",
    )
    summary = forward_opened(
        day, "vat", reply, ANNA, Mail(brand(SUPPORT), CAROL, "Invoice shows the wrong VAT")
    )
    assert f"[#{day.tickets['vat']}] your mail was applied: Invoice shows" in summary["Subject"]
    customer, note = [m for m in ticket_view(day, "vat")["messages"] if m["direction"] == "in"]
    assert (customer["from"], customer["author"]) == (CAROL, None)
    assert "last year's VAT number" in customer["body"]
    assert (note["from"], note["author"]) == (ANNA, ANNA) and "Carol phoned" in note["body"]


def anna_answers_alice(day: Day) -> None:
    """Anna answers from her notification: the answer goes to Alice and Bob from the brand,
    under Anna's name and the brand's signature, and the ticket becomes Anna's."""
    notice = day.latest(ANNA, "login", "new ticket")
    answer_from(
        day,
        ANNA,
        notice,
        "Please reset your password with the link on the login page.",
        "anna answers alice",
    )
    relay, summary = day.expect(
        Mail(by(ANNA, SUPPORT), ALICE, "Cannot log in", cc=(BOB,)),
        Mail(staff(SUPPORT), ANNA, "your mail was applied"),
    )
    text = relay.get_content()
    assert text.startswith("Please reset your password")
    assert text.rstrip().endswith("The Example support team")
    assert "On Tuesday the desk wrote" not in text
    assert f"answer sent to {ALICE}" in summary.get_content()
    assert day.ticket("login") == ("pending", "first", ANNA, 0, None)


def anna_merges_the_duplicate(day: Day) -> None:
    """`#merge N` from the duplicate's notification: nobody outside the team is told."""
    notice = day.latest(ANNA, "duplicate", "new ticket")
    answer_from(day, ANNA, notice, f"#merge {day.tickets['login']}", "anna merges")
    tag = f"[#{day.tickets['duplicate']}]"
    (summary,) = day.expect(Mail(staff(SUPPORT), ANNA, f"{tag} your mail was applied"))
    assert summary.get_content().splitlines() == [
        f"Ticket #{day.tickets['duplicate']} is now closed.",
        f"done: merged into #{day.tickets['login']}, which now holds its mail and people",
    ]
    assert day.ticket("duplicate")[0] == "closed"


def boris_answers_ivan(day: Day) -> None:
    notice = day.latest(BORIS, "invoice", "new ticket")
    answer_from(
        day,
        BORIS,
        notice,
        "Иван, счёт отправлен повторно, проверьте папку «Спам».",
        "boris answers ivan",
    )
    relay = relayed(day, BORIS, BRAND2, IVAN, "Не приходит счёт")
    assert relay.get_content().rstrip().endswith("Команда Brand2")
    assert day.ticket("invoice") == ("pending", "first", BORIS, 0, None)


def anna_resolves_carols_ticket(day: Day) -> None:
    """Anna answers Carol with `#resolve`: no survey now (`survey.send_on`); the ticket closes
    on the timer with one, since Carol was never surveyed."""
    number = day.tickets["vat"]
    agent_writes(
        day,
        ANNA,
        SUPPORT,
        f"[#{number}] Invoice shows the wrong VAT number",
        "#resolve\nCarol, the invoice is reissued with this year's VAT number.",
        "anna answers carol",
    )
    relay = relayed(day, ANNA, SUPPORT, CAROL, "Invoice shows the wrong VAT")
    assert relay.get_content().startswith("Carol, the invoice is reissued")
    assert day.ticket("vat") == ("resolved", "first", ANNA, 0, None)


def boris_answers_petr(day: Day) -> None:
    """Boris answers Pyotr in a fresh mail naming the ticket (he got no notification to
    answer: he brought the mail in). Pyotr never writes back."""
    number = day.tickets["import"]
    agent_writes(
        day,
        BORIS,
        BRAND2,
        f"[#{number}] Не работает импорт контактов",
        "Пётр, разбейте файл на части до 10 000 строк, это обойдёт зависание.",
        "boris answers petr",
    )
    relay = relayed(day, BORIS, BRAND2, PETR, "Не работает импорт")
    assert relay.get_content().rstrip().endswith("Команда Brand2")
    assert day.ticket("import") == ("pending", "first", BORIS, 0, None)


def boris_moves_olgas_ticket_to_the_second_line(day: Day) -> None:
    """Boris writes a fresh mail, with no token of ours: his MX's DKIM pass is the proof.
    The second line's member hears of it as of a new ticket, with Olga's words."""
    number = day.tickets["export"]
    agent_writes(day, BORIS, BRAND2, f"[#{number}] Ошибка при выгрузке отчёта", "#queue second")
    told, summary = day.expect(
        Mail(staff(BRAND2), VERA, "moved to your queue: Ошибка при выгрузке"),
        Mail(staff(BRAND2), BORIS, "your mail was applied"),
    )
    assert "обрывается с ошибкой 500" in told.get_content()
    assert "moved to queue second" in summary.get_content()
    assert day.ticket("export") == ("new", "second", None, 0, None)


def alice_thanks(day: Day) -> None:
    """Alice answers Anna (Bob still copied): only Anna, the assignee now, is told."""
    relay = day.latest(ALICE, "login")
    assert _shape(relay)[0] == by(ANNA, SUPPORT)
    customer_reply(day, ALICE, relay, "Thank you, that worked!", cc=BOB)
    day.expect(Mail(staff(SUPPORT), ANNA, "customer reply: Cannot log in"))
    assert day.ticket("login")[0] == "open"


def anna_closes_with_a_survey(day: Day) -> None:
    notice = day.latest(ANNA, "login", "customer reply")
    answer_from(day, ANNA, notice, "#close", "anna closes")
    survey, _ = day.expect(
        Mail(brand(SUPPORT), ALICE, "Cannot log in"),
        Mail(staff(SUPPORT), ANNA, "your mail was applied"),
    )
    assert "How satisfied are you" in survey.get_content()


def alice_rates_five(day: Day) -> None:
    survey = day.latest(ALICE, "login")
    assert "suppressed" in survey_click(day, ALICE, survey, 5)
    day.expect()
    status, *_, score = day.ticket("login")
    assert (status, score) == ("closed", 5)


def vera_answers_and_closes(day: Day) -> None:
    """The answer and the `#close` in one mail: Olga gets the answer, then the survey."""
    notice = day.latest(VERA, "export", "moved to your queue")
    answer_from(
        day,
        VERA,
        notice,
        "#close\nОльга, мы исправили выгрузку, попробуйте снова.",
        "vera answers olga",
    )
    relay, survey, _ = day.expect(
        Mail(by(VERA, BRAND2), OLGA, "Ошибка при выгрузке"),
        Mail(brand(BRAND2), OLGA, "Ошибка при выгрузке"),
        Mail(staff(BRAND2), VERA, "your mail was applied"),
    )
    assert day.mails.index(relay) < day.mails.index(survey)
    assert survey["In-Reply-To"] == relay["Message-ID"]
    assert relay.get_content().startswith("Ольга, мы исправили выгрузку")
    assert day.ticket("export")[:3] == ("closed", "second", VERA)


def olga_rates_two(day: Day) -> None:
    survey = day.latest(OLGA, "export")
    assert "suppressed" in survey_click(day, OLGA, survey, 2)
    day.expect()


def olga_reopens(day: Day) -> None:
    """Olga writes back within `reopen_within`: the ticket opens again and Vera is told."""
    relay = next(m for m in reversed(day.mails) if _shape(m)[0] == by(VERA, BRAND2))
    customer_reply(day, OLGA, relay, "Всё ещё падает на больших файлах.", "olga reopens")
    (told,) = day.expect(Mail(staff(BRAND2), VERA, "reopened: Ошибка при выгрузке"))
    assert "Всё ещё падает" in told.get_content()
    assert day.ticket("export") == ("open", "second", VERA, 1, 2)


def vera_resolves(day: Day) -> None:
    """`#resolve` sends no survey (not in `survey.send_on`), and Olga was surveyed once."""
    notice = day.latest(VERA, "export", "reopened")
    answer_from(
        day, VERA, notice, "#resolve\nВыпустили исправление для больших файлов.", "vera resolves"
    )
    relayed(day, VERA, BRAND2, OLGA, "Ошибка при выгрузке")
    assert day.ticket("export")[0] == "resolved"


def anna_writes_to_bob(day: Day) -> None:
    """Anna writes to Bob first, at the English brand: `#to` opens a pending ticket for him
    and her text goes to him alone, under her name, from the brand."""
    agent_writes(
        day,
        ANNA,
        SUPPORT,
        "Your own login",
        f"#to Bob <{BOB}>\nHello Bob, you share Alice's login; here is a login of your own.",
        "anna writes to bob",
    )
    relay, summary = day.expect(
        Mail(by(ANNA, SUPPORT), BOB, "Your own login"),
        Mail(staff(SUPPORT), ANNA, "your mail was applied"),
    )
    number = day.opened("own login", relay)
    assert relay.get_content().startswith("Hello Bob, you share Alice's login")
    assert "#to" not in relay.get_content()
    assert relay.get_content().rstrip().endswith("The Example support team")
    assert f"ticket #{number} opened for {BOB}" in summary.get_content()
    assert day.ticket("own login") == ("pending", "first", ANNA, 0, None)


def bob_answers(day: Day) -> None:
    """Bob answers in the thread of Anna's mail: the ticket opens and Anna, its assignee, is
    told. Nobody answers him today: the ticket is the day's backlog."""
    relay = day.latest(BOB, "own login")
    customer_reply(day, BOB, relay, "Thanks, but which password does it start with?")
    day.expect(Mail(staff(SUPPORT), ANNA, "customer reply: Your own login"))
    assert day.ticket("own login") == ("open", "first", ANNA, 0, None)


def days_pass(day: Day) -> None:
    """Ivan and Pyotr never answer: two reminders each two days apart, then the close with
    the survey. The resolved tickets close after `close_resolved_after` (7 days): Olga's
    without a survey (she had hers), Carol's with her first."""
    for at in (REMINDER_1, REMINDER_2):
        day.sweep(day.start + at, reminders=2)
        day.expect(
            Mail(brand(BRAND2), IVAN, "Не приходит счёт"),
            Mail(brand(BRAND2), PETR, "Не работает импорт"),
        )
    day.sweep(day.start + AUTO_CLOSE, closed=2)
    closings = day.expect(
        Mail(brand(BRAND2), IVAN, "Не приходит счёт"),
        Mail(brand(BRAND2), PETR, "Не работает импорт"),
    )
    assert all("mailto:" in closing.get_content() for closing in closings)
    day.sweep(day.start + RESOLVED_CLOSE, closed=2)
    olgas, carols = day.expect(
        Mail(brand(BRAND2), OLGA, "Ошибка при выгрузке"),
        Mail(brand(SUPPORT), CAROL, "Invoice shows the wrong VAT"),
    )
    assert "mailto:" not in olgas.get_content() and "mailto:" in carols.get_content()
    closed = {day.ticket(name)[0] for name in ("invoice", "export", "import", "vat")}
    assert closed == {"closed"}


REMINDER_1 = timedelta(days=2, hours=1)
REMINDER_2 = timedelta(days=4, hours=2)
AUTO_CLOSE = timedelta(days=6, hours=3)
RESOLVED_CLOSE = timedelta(days=7, hours=4)
UNTIL = timedelta(days=8)

DAY: tuple[Callable[[Day], None], ...] = (
    alice_writes,
    ivan_writes,
    olga_writes,
    alice_writes_again,
    boris_forwards_petrs_mail,
    anna_forwards_carols_mail,
    anna_answers_alice,
    anna_merges_the_duplicate,
    anna_resolves_carols_ticket,
    boris_answers_ivan,
    boris_answers_petr,
    boris_moves_olgas_ticket_to_the_second_line,
    alice_thanks,
    anna_closes_with_a_survey,
    alice_rates_five,
    vera_answers_and_closes,
    olga_rates_two,
    olga_reopens,
    vera_resolves,
    anna_writes_to_bob,
    bob_answers,
    days_pass,
)


@pytest.fixture
def day(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
    tmp_path: Path,
) -> Iterator[Day]:
    sink, sink_port = smtp_sink
    templates = brand2_templates(tmp_path / "brand2-templates")
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults: {queue: first, priority: normal}\nrules: []\n")
    config = write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
        support_addresses=[
            {
                "address": SUPPORT,
                "name": EXAMPLE_NAME,
                "language": "en",
                "signature": "The Example support team",
            },
            {
                "address": BRAND2,
                "name": BRAND2_NAME,
                "language": "ru",
                "templates": str(templates),
                "signature": "Команда Brand2",
            },
        ],
        agents={
            # a customer whose mail an agent forwarded learns the ticket's number and the
            # brand's promise only from the acknowledgement
            "forward_ack": True,
            "team": [
                {"email": ANNA, "name": "Anna", "queues": ["first"]},
                {"email": BORIS, "name": "Boris", "queues": ["first"]},
                {"email": VERA, "name": "Vera", "queues": ["second"]},
            ],
        },
        queues=[{"name": "first", "line": 1}, {"name": "second", "line": 2}],
        rules=str(rules),
        agent_auth={"trusted_authserv_ids": ["mx.example.com"]},
        assign_on_first_answer=True,
        notify={"new_ticket": True, "customer_reply": True},
        business_hours={"timezone": "UTC", "week": {"mon-sun": "00:00-24:00"}},
        # no SLA moment falls in the week: a warning would come at 80 % of 10 days
        sla={"normal": {"first_response": "1h", "resolution": "10d"}},
        survey={"scale": "1-5"},
    )
    yield Day(start_daemon(config), config, tmp_path / "data" / "postdesk.db", sink)


def test_a_support_teams_day(day: Day) -> None:
    for step in DAY:
        step(day)
    # Nothing but the mails the steps expected: every outbox row sent, each one at the sink.
    # By hand: 4 new mails with an acknowledgement and 2 notifications each (12); 2 forwards
    # with an acknowledgement and the forwarding agent's summary each (4); Anna's answer and
    # summary (2), her merge's summary (1), her answer to Carol and summary (2); Boris's
    # answers to Ivan and Pyotr with a summary each (4), his move's notification to Vera and
    # summary (2); Alice's thanks to Anna (1); Anna's close: survey and summary (2); Vera's
    # answer, survey and summary (3); Olga's reopening to Vera (1); Vera's answer and summary
    # (2); Anna's #to mail to Bob and summary (2), Bob's answer to Anna (1); 4 reminders
    # (Ivan and Pyotr twice), 4 closing notices (Ivan, Pyotr, Olga, Carol) (8): 47.
    assert day.sql("SELECT status, count(*) FROM outbox GROUP BY status") == [
        ("sent", len(day.mails))
    ]
    assert len(day.sink.messages) == len(day.mails) == 47
    since, until = day.start - timedelta(minutes=1), day.start + UNTIL
    period = ("--since", since.isoformat(), "--until", until.isoformat())
    figures = json.loads(day.cli("report", *period, "--json").stdout)
    overall = figures["overall"]
    # Tickets: login, invoice, export, duplicate, import (Pyotr's, forwarded), vat (Carol's,
    # forwarded) and own login (Anna's #to Bob), all created today; the duplicate, merged into
    # login, is login's mail now and no ticket of its own: 6. Resolved and closed in the
    # period: login (Anna's #close), invoice and import (closed on the timer), export (Vera's
    # #resolve after the reopen) and vat (Anna's #resolve), both closed on the timer 7 days
    # later: 5. Bob's ticket is open, waiting on Anna: the backlog.
    assert (overall["created"], overall["resolved"], overall["closed"]) == (6, 5, 5)
    assert overall["backlog"] == 1 and overall["resolution_rate"] == pytest.approx(5 / 6)
    # First answered: login by Anna, invoice by Boris, export by Vera, import by Boris, vat by
    # Anna, each seconds after the ticket was opened, and own login by the very mail that
    # opened it: all within 30m and 1h (open 24/7: business time is calendar time).
    assert overall["first_response"]["count"] == 6
    assert overall["first_response_within"] == {"30m": 1.0, "1h": 1.0}
    assert overall["first_response_within_sla"] == 1.0
    assert overall["first_response_business"] == overall["first_response"]
    assert_durations(
        overall["first_response"],
        [
            day.between("login opened", "anna answers alice"),
            day.between("invoice opened", "boris answers ivan"),
            day.between("export opened", "vera answers olga"),
            day.between("petr opened", "boris answers petr"),
            day.between("carol opened", "anna answers carol"),
            day.between("anna writes to bob", "anna writes to bob"),
        ],
    )
    # Resolution: login in seconds (Anna's close), export in seconds (Vera's resolve: the
    # stamp of its last resolution), vat in seconds (Anna's resolve), invoice and import at
    # the automatic close 6 days 3 hours after the day began: 3 of 5 within 8h.
    assert overall["resolution_within"] == {"8h": pytest.approx(3 / 5)}
    assert_durations(
        overall["resolution"],
        [
            day.between("login opened", "anna closes"),
            day.between("export opened", "vera resolves"),
            day.between("carol opened", "anna answers carol"),
            day.between("invoice opened", day.start + AUTO_CLOSE),
            day.between("petr opened", day.start + AUTO_CLOSE),
        ],
    )
    assert overall["resolution_business"] == overall["resolution"]
    # First-contact resolution: login, invoice, import and vat were resolved with one answer
    # each (Anna's #close and Boris's #queue carried no text, the forwards' words were
    # notes); export had two and was reopened: 4 of the 5 resolved.
    assert overall["first_contact_resolution"] == pytest.approx(4 / 5)
    assert overall["reopen_rate"] == pytest.approx(1 / 5)
    # Escalated: export, from line 1 to line 2: 1 of the 6 tickets.
    assert overall["escalation_rate"] == pytest.approx(1 / 6)
    assert overall["sla_flags"] == {} and overall["resolution_within_sla"] == 1.0
    assert overall["backlog_past_sla"] == 0
    # Acknowledgements: one per new mail, the duplicate's included (its history is login's),
    # and one per forward (agents.forward_ack); the #to mail is the agent's own: 6.
    assert overall["autoreplies_sent"] == 6 and overall["autoreplies_suppressed"] == {}
    # Surveys: login (Anna's #close), export (Vera's #close), invoice and import (the
    # automatic close), vat (the timer's close of the resolved ticket); answered 5
    # (satisfied) and 2: CSAT 1 of 2, response rate 2 of 5.
    surveys = ("surveys_sent", "surveys_answered", "satisfied", "csat", "survey_response_rate")
    assert [overall[k] for k in surveys] == [5, 2, 1, 0.5, pytest.approx(2 / 5)]
    assert overall["nps"] is None  # the 1-5 scale
    # Answers by their authors: Anna three (login, vat, own login), Boris two (invoice,
    # import), Vera two (export); the ties by address.
    assert figures["agents"] == [
        {"agent": ANNA, "replies": 3, "tickets": 3},
        {"agent": BORIS, "replies": 2, "tickets": 2},
        {"agent": VERA, "replies": 2, "tickets": 1},
    ]
    # By queue, as the tickets stand: export in second, the other five in first.
    groups = json.loads(day.cli("report", *period, "--by", "queue", "--json").stdout)["groups"]
    wanted = ("created", "escalation_rate", "first_contact_resolution", "csat")
    assert {q: [g[k] for k in wanted] for q, g in groups.items()} == {
        "first": [5, 0.0, 1.0, 1.0],
        "second": [1, 1.0, 0.0, 0.0],
    }
    table = day.cli("report", *period).stdout.decode()
    lines = [re.split(r"\s{2,}", line, maxsplit=1) for line in table.splitlines() if "  " in line]
    rows = {label: value for label, value in lines}
    shown = {
        "tickets created": "6",
        "first-contact resolution": "80%",
        "reopen rate": "20%",
        "first response within 30m": "100%",
        "resolved within 8h": "60%",
        "escalation rate": "17%",
        "survey response rate": "40%",
        "CSAT (satisfied)": "50%",
    }
    assert {label: rows[label] for label in shown} == shown
    assert table.splitlines()[-3:] == [
        f"{ANNA:<40} {3:>8} {3:>8}",
        f"{BORIS:<40} {2:>8} {2:>8}",
        f"{VERA:<40} {2:>8} {1:>8}",
    ]


def assert_durations(got: dict[str, Any], spans: list[tuple[float, float]]) -> None:
    """Mean, median and p90 grow with every value, so each lies between its value over the
    shortest times and over the longest. p90 by nearest rank of fewer than ten values is the
    largest."""
    lows, highs = [low for low, _ in spans], [high for _, high in spans]
    assert got["count"] == len(spans)
    for name, of in (("mean", statistics.fmean), ("median", statistics.median), ("p90", max)):
        assert of(lows) <= got[name] <= of(highs), (name, got[name], spans)
