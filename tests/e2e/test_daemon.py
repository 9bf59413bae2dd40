"""The real daemon as a subprocess: SMTP and LMTP in, acknowledgement out to an SMTP sink."""

from __future__ import annotations

import json
import signal
import smtplib
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Daemon, Sink
from tests.helpers import free_port, mail, postdesk, read_until


def tickets(config: Path) -> list[dict[str, Any]]:
    done = postdesk(config, "tickets", "list", "--json")
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.fixture
def daemon_config(write_config: Callable[..., Path], smtp_sink: tuple[Sink, int]) -> Path:
    _, sink_port = smtp_sink
    return write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}", "lmtp": f"127.0.0.1:{free_port()}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
    )


def test_mail_over_smtp_gets_ticket_and_acknowledgement(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon], smtp_sink: tuple[Sink, int]
) -> None:
    sink, _ = smtp_sink
    daemon = start_daemon(daemon_config)
    customer = mail(subject="Счёт не оплачивается", body="Здравствуйте! Не проходит оплата.")
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.send_message(customer)
    (ack,) = sink.wait_for(1)
    assert "[#1]" in ack["Subject"]
    assert ack["To"] == "ann@example.org" or "ann@example.org" in ack["To"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == customer["Message-ID"]
    assert sink.messages[0][1] == ["ann@example.org"]
    assert "под номером #1" in ack.get_content()  # the office-hours or the off-hours text
    (ticket,) = tickets(daemon_config)
    assert ticket["subject"] == "Счёт не оплачивается"
    assert ticket["number"] == 1
    assert (ticket["queue"], ticket["priority"], ticket["tags"]) == (
        "billing",
        "normal",
        ["billing"],
    )


def test_edited_rules_file_is_picked_up_without_a_signal(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")
    config = write_config(listen={"smtp": f"127.0.0.1:{free_port()}"}, rules=str(rules))
    daemon = start_daemon(config)
    rules.write_text(
        "rules:\n  - name: printers\n    if: {subject: [printer]}\n"
        "    then: {queue: ops, priority: high, autoreply: none}\n"
    )
    read_until(daemon.process, "configuration reloaded", daemon.log, timeout=20)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.send_message(mail(subject="Printer jammed"))
    (ticket,) = tickets(config)
    assert (ticket["queue"], ticket["priority"]) == ("ops", "high")
    shown = json.loads(postdesk(config, "tickets", "show", "1", "--json").stdout)
    assert shown["matched_rules"] == ["printers"]
    suppressed = [e for e in shown["events"] if e["type"] == "autoreply_suppressed"]
    assert suppressed[0]["data"]["reason"] == "rule 'printers': autoreply: none"


def test_other_recipients_are_refused_no_open_relay(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon]
) -> None:
    daemon = start_daemon(daemon_config)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.ehlo()
        client.mail("spammer@example.net")
        code, _ = client.rcpt("victim@elsewhere.example")
        assert code == 550
        assert client.rcpt("support+t1xabc@example.com")[0] == 250
        assert client.rcpt("SUPPORT@Example.com")[0] == 250


def test_same_message_twice_over_smtp_is_one_ticket(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon], smtp_sink: tuple[Sink, int]
) -> None:
    sink, _ = smtp_sink
    daemon = start_daemon(daemon_config)
    message = mail()
    for _ in range(2):
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
            client.send_message(message)
    sink.wait_for(1)
    assert len(tickets(daemon_config)) == 1


def test_lmtp_answers_per_recipient(
    daemon_config: Path, start_daemon: Callable[[Path], Daemon]
) -> None:
    daemon = start_daemon(daemon_config)
    with smtplib.LMTP("127.0.0.1", daemon.lmtp_port) as client:
        client.ehlo_or_helo_if_needed()
        assert client.mail("ann@example.org")[0] == 250
        assert client.rcpt("support@example.com")[0] == 250
        assert client.rcpt("stranger@example.net")[0] == 550
        assert client.rcpt("support+x@example.com")[0] == 250
        # LMTP answers DATA once per accepted recipient (smtplib reads only the first).
        replies = [client.data(mail().as_bytes()), client.getreply()]
    assert [code for code, _ in replies] == [250, 250]
    assert len(tickets(daemon_config)) == 1


def test_sigterm_stops_gracefully_and_sighup_with_broken_rules_keeps_running(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults: {queue: general, priority: normal}\nrules: []\n")
    config = write_config(listen={"smtp": f"127.0.0.1:{free_port()}"}, rules=str(rules))
    daemon = start_daemon(config)
    rules.write_text("rules:\n  - name: x\n    then: {queue: nowhere\n")
    daemon.process.send_signal(signal.SIGHUP)
    read_until(daemon.process, "reload refused", daemon.log, timeout=20)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.send_message(mail())
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0
    rules.write_text("rules: []\n")
    assert len(tickets(config)) == 1


def test_sighup_moves_the_listener_and_names_the_keys_that_need_a_restart(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon]
) -> None:
    old, new = free_port(), free_port()
    config = write_config(listen={"smtp": f"127.0.0.1:{old}"}, instance="desk-a")
    daemon = start_daemon(config)
    write_config(listen={"smtp": f"127.0.0.1:{new}"}, instance="desk-b")
    daemon.process.send_signal(signal.SIGHUP)
    read_until(daemon.process, f"address=127.0.0.1:{new}", daemon.log, timeout=20)
    read_until(daemon.process, 'only after a restart" keys=instance', daemon.log, timeout=20)
    with smtplib.SMTP("127.0.0.1", new) as client:
        client.send_message(mail())
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", old, timeout=5)
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(timeout=30) == 0
    assert len(tickets(config)) == 1


def test_daemon_refuses_an_old_schema(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = write_config(listen={"smtp": f"127.0.0.1:{free_port()}"})
    assert postdesk(config, "db", "upgrade").returncode == 0
    with sqlite3.connect(tmp_path / "data" / "postdesk.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    done = postdesk(config, "run")
    assert done.returncode == 78
    assert b"postdesk db upgrade" in done.stderr


def test_ingest_pipe_writes_acknowledgement_to_maildir(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config()
    done = postdesk(config, "ingest", stdin=mail().as_bytes())
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["outcome"] == "ticket_created"
    sent = list((tmp_path / "sent" / "new").iterdir())
    assert len(sent) == 1
    assert b"[#1]" in sent[0].read_bytes()


def test_pipe_fed_mail_and_a_tripped_breaker_show_in_the_daemons_metrics_and_status(
    write_config: Callable[..., Path], start_daemon: Callable[[Path], Daemon]
) -> None:
    """`postdesk ingest` ends before any scrape: the daemon counts its mail from the
    database. Two acknowledgements an hour are the limit here: the third mail trips it."""
    metrics_port = free_port()
    config = write_config(
        metrics={"listen": f"127.0.0.1:{metrics_port}"},
        autoreply={"circuit_breaker_per_hour": 2},
    )
    for i in range(3):
        message = mail(sender=f"c{i}@example.org", subject=f"Question {i}").as_bytes()
        assert postdesk(config, "ingest", stdin=message).returncode == 0
    start_daemon(config)
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as got:
        found = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(got.read().decode())
            for s in family.samples
        }
    key = (("source", "pipe"), ("status", "ticket_created"))
    assert found["postdesk_received_total", key] == 3
    assert found["postdesk_breaker_tripped", (("breaker", "customer"),)] == 1
    assert found["postdesk_breaker_tripped", (("breaker", "staff"),)] == 0
    assert 3000 < found["postdesk_breaker_seconds_left", (("breaker", "customer"),)] <= 3600
    assert found["postdesk_outbox_paused", ()] == 0
    status = json.loads(postdesk(config, "status", "--json").stdout)
    customer = status["breakers"]["customer"]
    assert customer["tripped"] and customer["last_hour"] == 2 and customer["until"]
    assert not status["breakers"]["staff"]["tripped"]
    assert status["inbound_by_source"] == {"pipe": {"ticket_created": 3}}


def test_ingest_exits_75_when_database_is_unavailable(write_config: Callable[..., Path]) -> None:
    config = write_config(database=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    done = postdesk(config, "ingest", stdin=mail().as_bytes())
    assert done.returncode == 75
    assert b"database unavailable" in done.stderr


def test_quarantine_list_show_release(write_config: Callable[..., Path]) -> None:
    config = write_config()
    raw = b"Subject: who sent this?\r\n\r\nno sender anywhere\r\n"
    assert postdesk(config, "ingest", stdin=raw).returncode == 0
    listed = json.loads(postdesk(config, "quarantine", "list", "--json").stdout)
    assert len(listed) == 1 and "sender" in listed[0]["reason"]
    shown = postdesk(config, "quarantine", "show", str(listed[0]["id"]))
    assert b"no sender anywhere" in shown.stdout
    released = postdesk(config, "quarantine", "release", str(listed[0]["id"]))
    assert json.loads(released.stdout)["outcome"] == "quarantined"


def test_releasing_a_false_spam_hit_makes_a_ticket_for_good(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "defaults: {queue: general, priority: normal, autoreply: ack}\n"
        "rules:\n  - name: gambling\n    if: {subject: [casino]}\n    then: {spam: true}\n"
    )
    config = write_config(rules=str(rules))
    message = mail(subject="Refund for the Casino Royale screening").as_bytes()
    assert json.loads(postdesk(config, "ingest", stdin=message).stdout)["outcome"] == "quarantined"
    (held,) = json.loads(postdesk(config, "quarantine", "list", "--json").stdout)
    assert held["reason"] == "spam by rules: gambling"
    released = postdesk(config, "quarantine", "release", str(held["id"]))
    assert released.returncode == 0, released.stderr.decode()
    assert json.loads(released.stdout)["outcome"] == "ticket_created"
    assert json.loads(postdesk(config, "quarantine", "list", "--json").stdout) == []
    shown = json.loads(postdesk(config, "tickets", "show", "1", "--json").stdout)
    (event,) = [e for e in shown["events"] if e["type"] == "spam_released"]
    assert event["data"]["rules"] == ["gambling"]
    again = postdesk(config, "ingest", stdin=message)  # the same bytes again: still one ticket
    assert json.loads(again.stdout)["outcome"] == "duplicate"
    assert len(tickets(config)) == 1


def test_check_config_reports_file_and_line(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    good = write_config()
    assert postdesk(good, "check-config").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("support_addresses: [support@example.com]\nlisten:\n  smpt: 1\n")
    done = postdesk(bad, "check-config")
    assert done.returncode == 78
    assert f"{bad}:3: listen.smpt: unknown key".encode() in done.stderr


def test_check_config_finds_broken_cross_references_and_secrets(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        agents={
            "forward_ack": True,
            "team": [{"email": "anna@example.com", "queues": ["general", "sales"]}],
        },
        sla={"critical": {"first_response": "1h", "resolution": "1d"}},
        outgoing={
            "smtp": {
                "host": "127.0.0.1",
                "username": "postdesk",
                "password_env": "POSTDESK_TEST_UNSET_VARIABLE",
            }
        },
        mailboxes=[
            {
                "name": "support",
                "host": "127.0.0.1",
                "username": "support@example.com",
                "password_file": str(tmp_path / "missing.pass"),
            }
        ],
    )
    done = postdesk(config, "check-config")
    assert done.returncode == 78
    lines = config.read_text().splitlines()
    errors = done.stderr.decode().splitlines()

    def line_with(text: str) -> int:
        return next(n for n, line in enumerate(lines, 1) if text in line)

    assert errors == [
        f"{config}:{line_with('forward_ack:')}: agents.forward_ack: no forward can be proven "
        "without agent_auth.trusted_authserv_ids (a forward carries no reply token), so no "
        "forwarded customer would be acknowledged",
        f"{config}:{line_with('- sales')}: agents.team.0.queues.1: unknown queue 'sales' "
        "(known: general, ops, billing)",
        f"{config}:{line_with('critical:')}: sla.critical: unknown priority 'critical' "
        "(known: low, normal, high, urgent)",
        f"{config}:{line_with('password_env:')}: outgoing.smtp.password_env: environment "
        "variable POSTDESK_TEST_UNSET_VARIABLE is not set (run check-config with the "
        "daemon's environment)",
        f"{config}:{line_with('password_file:')}: mailboxes.0.password_file: cannot read "
        f"{tmp_path / 'missing.pass'}: No such file or directory",
    ]


def test_usage_errors_exit_64(write_config: Callable[..., Path]) -> None:
    assert postdesk(write_config(), "no-such-command").returncode == 64
    loud = postdesk(write_config(), "--log-level", "loud", "status")
    assert loud.returncode == 64
    assert b"argument --log-level: invalid choice: 'LOUD'" in loud.stderr
    assert b"Traceback" not in loud.stderr
    assert postdesk(write_config(), "--log-level", "warning", "check-config").returncode == 0


def test_init_writes_a_config_that_checks(tmp_path: Path) -> None:
    target = tmp_path / "etc"
    done = subprocess.run(
        [sys.executable, "-m", "postdesk.daemon.cli", "init", str(target)],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert postdesk(target / "config.yaml", "check-config").returncode == 0


def test_send_outbox_retries_then_delivers_once(
    write_config: Callable[..., Path], smtp_sink: tuple[Sink, int]
) -> None:
    sink, port = smtp_sink
    config = write_config(outgoing={"smtp": {"host": "127.0.0.1", "port": port}})
    sink.refuse_with = "451 4.3.0 try later"
    done = postdesk(config, "ingest", stdin=mail().as_bytes())
    assert done.returncode == 0
    assert sink.messages == []
    sink.refuse_with = None
    early = postdesk(config, "send-outbox")  # a 4xx paused all delivery; nothing is tried
    assert json.loads(early.stdout) == {"sent": 0, "retried": 0, "failed": 0, "paused": True}
    status = json.loads(postdesk(config, "status", "--json").stdout)
    assert status["outbox"]["queued"] == 1 and status["outbox"]["failed"] == 0
    assert status["relay"]["paused"]
    assert status["relay"]["last_relay_error"] == "message refused: 451 4.3.0 try later"
    later = postdesk(config, "send-outbox", "--now", "2100-01-01T00:00:00+00:00")
    assert json.loads(later.stdout)["sent"] == 1
    again = postdesk(config, "send-outbox", "--now", "2100-01-02T00:00:00+00:00")
    assert json.loads(again.stdout)["sent"] == 0
    assert len(sink.wait_for(1)) == 1


def test_permanent_refusal_is_not_retried(
    write_config: Callable[..., Path], smtp_sink: tuple[Sink, int]
) -> None:
    sink, port = smtp_sink
    config = write_config(outgoing={"smtp": {"host": "127.0.0.1", "port": port}})
    sink.refuse_with = "550 5.1.1 no such user"
    assert postdesk(config, "ingest", stdin=mail().as_bytes()).returncode == 0
    sink.refuse_with = None
    later = postdesk(config, "send-outbox", "--now", "2100-01-01T00:00:00+00:00")
    assert json.loads(later.stdout)["sent"] == 0
    status = json.loads(postdesk(config, "status", "--json").stdout)
    assert status["outbox"]["failed"] == 1 and not status["relay"]["paused"]
    (failed,) = json.loads(postdesk(config, "outbox", "list", "--json").stdout)
    assert failed["status"] == "failed" and failed["recipients"] == ["ann@example.org"]
    assert failed["last_error"] == "message refused: 550 5.1.1 no such user"
    shown = json.loads(postdesk(config, "outbox", "show", str(failed["id"]), "--json").stdout)
    assert shown["subject"].startswith("[#1]") and shown["ticket"] == 1


def test_outbox_retry_brings_failed_mail_back(
    write_config: Callable[..., Path], smtp_sink: tuple[Sink, int]
) -> None:
    sink, port = smtp_sink
    config = write_config(outgoing={"smtp": {"host": "127.0.0.1", "port": port}})
    sink.refuse_with = "550 5.1.1 no such user"
    for n in range(2):
        assert postdesk(config, "ingest", stdin=mail(subject=f"Q{n}").as_bytes()).returncode == 0
    sink.refuse_with = None  # the recipient's mailbox exists again
    first, second = sorted(
        r["id"] for r in json.loads(postdesk(config, "outbox", "list", "--json").stdout)
    )
    assert postdesk(config, "outbox", "retry", "999").returncode == 65
    assert postdesk(config, "outbox", "retry").returncode == 64
    one = postdesk(config, "outbox", "retry", str(first))
    assert one.returncode == 0 and json.loads(one.stdout)["requeued"] == [first]
    assert json.loads(postdesk(config, "send-outbox").stdout)["sent"] == 1
    again = postdesk(config, "outbox", "retry", str(first))
    assert again.returncode == 65 and b"is sent, not failed" in again.stderr
    rest = postdesk(config, "outbox", "retry", "--failed")
    assert json.loads(rest.stdout)["requeued"] == [second]
    assert json.loads(postdesk(config, "send-outbox").stdout)["sent"] == 1
    assert len(sink.wait_for(2)) == 2
    listed = json.loads(postdesk(config, "outbox", "list", "--status", "sent", "--json").stdout)
    assert sorted(r["id"] for r in listed) == [first, second]
    assert json.loads(postdesk(config, "outbox", "list", "--json").stdout) == []


def test_two_desks_pointed_at_each_other_exchange_one_mail_and_stop(
    tmp_path: Path, start_daemon: Callable[[Path], Daemon]
) -> None:
    ports = {"a": free_port(), "b": free_port()}
    configs = {}
    for me, other in (("a", "b"), ("b", "a")):
        folder = tmp_path / me
        folder.mkdir()
        configs[me] = folder / "config.yaml"
        configs[me].write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(folder / "data"),
                    "support_addresses": [f"support@desk-{me}.example"],
                    "listen": {"smtp": f"127.0.0.1:{ports[me]}"},
                    "outgoing": {"smtp": {"host": "127.0.0.1", "port": ports[other]}},
                }
            )
        )
    desk_b = start_daemon(configs["b"])
    start_daemon(configs["a"])
    with smtplib.SMTP("127.0.0.1", ports["a"]) as client:
        client.send_message(mail(sender="support@desk-b.example", to="support@desk-a.example"))
    read_until(desk_b.process, "message ingested", desk_b.log, timeout=20)
    assert "outcome=suppressed" in desk_b.log[-1]
    assert "loop" in desk_b.log[-1]
    assert len(tickets(configs["a"])) == 1
    assert tickets(configs["b"]) == []
    status_b = json.loads(postdesk(configs["b"], "status", "--json").stdout)
    assert status_b["outbox"] == {"queued": 0, "sent": 0, "failed": 0, "oldest_queued": None}


def test_agent_answers_from_a_mail_client_through_the_daemon(
    write_config: Callable[..., Path],
    start_daemon: Callable[[Path], Daemon],
    smtp_sink: tuple[Sink, int],
) -> None:
    sink, sink_port = smtp_sink
    config = write_config(
        listen={"smtp": f"127.0.0.1:{free_port()}"},
        outgoing={"smtp": {"host": "127.0.0.1", "port": sink_port}},
        notify={"new_ticket": True, "customer_reply": True},
    )
    daemon = start_daemon(config)
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.send_message(mail())
    arrived = sink.wait_for(2)
    notice = next(m for m in arrived if m["To"] == "anna@example.com")
    answer = mail(
        sender="Anna <anna@example.com>",
        to=str(notice["Reply-To"]),
        subject=f"Re: {notice['Subject']}",
        body="#priority high\nWe are sending a technician.\n\n> Ticket #1: Printer is on fire",
        In_Reply_To=str(notice["Message-ID"]),
    )
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port) as client:
        client.send_message(answer)
    arrived = sink.wait_for(4)
    relay = next(m for m in arrived[2:] if m["To"] == "ann@example.org")
    assert relay.get_content().strip() == "We are sending a technician."
    assert "[#1]" in relay["Subject"]
    (ticket,) = tickets(config)
    assert (ticket["priority"], ticket["status"]) == ("high", "pending")


def test_sweep_command_runs_due_work_once(write_config: Callable[..., Path]) -> None:
    config = write_config(
        queues=[
            {"name": "general", "escalation": "leads@example.com"},
            {"name": "ops"},
            {"name": "billing"},
        ]
    )
    assert postdesk(config, "ingest", stdin=mail().as_bytes()).returncode == 0
    later = "2100-01-04T12:00:00+00:00"
    first = postdesk(config, "sweep", "--now", later)
    assert first.returncode == 0, first.stderr.decode()
    assert json.loads(first.stdout) == {
        "reminders": 0,
        "closed": 0,
        "sla_warnings": 2,
        "sla_breaches": 2,
        "digests": 0,
        "reports": 0,
        "failed": 0,
    }
    again = json.loads(postdesk(config, "sweep", "--now", later).stdout)
    assert set(again.values()) == {0}
    assert postdesk(config, "sweep", "--now", "yesterday").returncode == 64


def test_rules_dry_run_and_replay(write_config: Callable[..., Path], tmp_path: Path) -> None:
    old = tmp_path / "old-rules.yaml"
    old.write_text("rules: []\n")
    new = tmp_path / "rules.yaml"
    new.write_text(
        "rules:\n  - name: billing\n    if: {subject: [invoice, счет]}\n"
        "    then: {queue: billing, priority: high}\n"
    )
    config = write_config(rules=str(new))
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "a.eml").write_bytes(mail(subject="Счёт за ноябрь").as_bytes())
    (saved / "b.eml").write_bytes(mail(subject="Printer").as_bytes())
    tested = postdesk(config, "rules", "test", str(saved / "a.eml"), "--json")
    assert tested.returncode == 0, tested.stderr.decode()
    report = json.loads(tested.stdout)
    assert report["decision"]["queue"] == "billing"
    assert report["trace"][0]["hit"] is True
    replay = postdesk(config, "rules", "replay", str(saved), "--against", str(old))
    lines = replay.stdout.decode().splitlines()
    assert any(
        line.endswith("a.eml: queue: general -> billing; priority: normal -> high")
        for line in lines
    ), lines
    assert lines[-1] == "1 of 2 messages would be routed differently"
