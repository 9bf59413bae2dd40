import os
from datetime import timedelta
from pathlib import Path

import pytest

from postdesk.config.errors import ConfigError
from postdesk.config.loader import EXAMPLE_DIR, load, read_secret
from postdesk.config.schema import SmtpRelay, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("8h", timedelta(hours=8)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (90, timedelta(seconds=90)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "5x", "2d later", ""])
def test_bad_duration_is_explained(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_embedded_default_without_any_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POSTDESK_CONFIG", raising=False)
    settings = load()
    assert settings.database_url == "sqlite:///postdesk-data/postdesk.db"
    assert settings.support_addresses == ["support@localhost"]
    assert settings.listen.smtp == "127.0.0.1:2525"
    assert settings.outgoing.maildir is None and settings.outgoing.smtp is None


def test_example_config_loads_with_paths_relative_to_its_folder() -> None:
    settings = load(EXAMPLE_DIR / "config.yaml")
    assert settings.data_dir == EXAMPLE_DIR / "data"
    assert settings.database_url == f"sqlite:///{EXAMPLE_DIR / 'data' / 'postdesk.db'}"
    assert settings.env_file == EXAMPLE_DIR / "postdesk.env"
    assert settings.rules == EXAMPLE_DIR / "rules.yaml"
    assert settings.sla["urgent"].first_response == timedelta(minutes=30)


def test_unknown_key_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("support_addresses: [a@b.c]\nlisten:\n  smpt: 127.0.0.1:25\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert f"{path}:3: listen.smpt: unknown key" in str(err.value)


def test_bad_value_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("sla:\n  urgent: {first_response: soon, resolution: 8h}\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert f"{path}:2: sla.urgent.first_response:" in str(err.value)
    assert "not a duration" in str(err.value)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("listen:\n  smtp: [unclosed\nlanguage: en\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: YAML syntax error"):
        load(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.yaml")


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_TEST_PW", "s3cret")
    assert read_secret(SmtpRelay(host="h", password_env="PD_TEST_PW"), "x") == "s3cret"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert read_secret(SmtpRelay(host="h", password_file=secret), "x") == "from-file"
    with pytest.raises(ConfigError, match="PD_UNSET_VAR is not set"):
        read_secret(SmtpRelay(host="h", password_env="PD_UNSET_VAR"), "outgoing.smtp")


def test_secret_files_count_from_the_config_folder(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "outgoing: {smtp: {host: relay, password_file: smtp-password}}\n"
        "mailboxes:\n  - {name: m, host: imap, username: u, password_file: secrets/imap}\n"
        "  - {name: o, host: imap, username: u, oauth2: {token_file: token}}\n"
    )
    settings = load(config)
    assert settings.outgoing.smtp is not None
    assert settings.outgoing.smtp.password_file == tmp_path / "smtp-password"
    assert settings.mailboxes[0].password_file == tmp_path / "secrets" / "imap"
    oauth2 = settings.mailboxes[1].oauth2
    assert oauth2 is not None and oauth2.token_file == tmp_path / "token"


def test_a_removed_key_says_what_replaces_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("language: en\ndefault_priority: high\n")
    with pytest.raises(
        ConfigError, match=r"config.yaml:2: default_priority: no longer used.*rules"
    ):
        load(config)


def test_env_file_feeds_password_env_and_set_variables_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PD_TEST_SMTP", "")  # recorded, so that teardown removes it again
    monkeypatch.delenv("PD_TEST_SMTP")
    monkeypatch.setenv("PD_TEST_IMAP", "from the unit")
    (tmp_path / "secrets.env").write_text("PD_TEST_SMTP=s3cret\nPD_TEST_IMAP=from the file\n")
    config = tmp_path / "config.yaml"
    config.write_text("env_file: secrets.env\n")
    assert load(config).env_file == tmp_path / "secrets.env"
    assert os.environ["PD_TEST_SMTP"] == "s3cret"
    assert os.environ["PD_TEST_IMAP"] == "from the unit"


def test_a_missing_env_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("env_file: nowhere.env\n")
    with pytest.raises(ConfigError, match=r"nowhere\.env:0: cannot read"):
        load(config)


def test_agents_as_a_list_or_with_their_options(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("agents:\n  - {email: anna@example.com}\n")
    listed = load(path)
    assert [a.email for a in listed.agents] == ["anna@example.com"]
    assert listed.forward_ack is False
    path.write_text("agents:\n  forward_ack: true\n  team:\n    - {email: anna@example.com}\n")
    optioned = load(path)
    assert optioned.agents == listed.agents and optioned.forward_ack is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "agents:\n  forward_ack: true\n  team:\n    - {email: a@b.c, nmae: Anna}\n",
            ":4: agents.team.0.nmae: unknown key (did you mean 'name'?)",
        ),
        ("agents:\n  forward_ak: true\n", "agents: unknown key 'forward_ak'"),
        ("forward_ack: true\n", "forward_ack belongs under agents (agents.forward_ack)"),
    ],
    ids=["misspelt-agent-key", "misspelt-option", "option-at-the-top"],
)
def test_agent_options_are_checked(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert expected in str(err.value)
