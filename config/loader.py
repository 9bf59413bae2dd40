"""Read config.yaml into Settings; every error is reported as ``file:line: message``."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from postdesk.config.errors import ConfigError
from postdesk.config.schema import Secret, Settings

ENV_CONFIG = "POSTDESK_CONFIG"
EXAMPLE_DIR = Path(__file__).parent / "example"
M = TypeVar("M", bound=BaseModel)


def config_file(path: Path | str | None = None) -> Path | None:
    """The file in force: the named one, else $POSTDESK_CONFIG, else none (embedded default)."""
    chosen = path or os.environ.get(ENV_CONFIG)
    return Path(chosen) if chosen else None


def load(path: Path | str | None = None) -> Settings:
    """Load the named file, else $POSTDESK_CONFIG, else the embedded default (which alone uses
    the example rules: a config of one's own names its rules or has none)."""
    file = config_file(path)
    if file is None:
        return Settings(rules=EXAMPLE_DIR / "rules.yaml")
    data = load_yaml(file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}:1: the configuration must be a mapping of keys")
    settings = _resolve_paths(validate_yaml(Settings, file, data), file.parent)
    if settings.env_file:
        load_env_file(settings.env_file)
    return settings


def load_env_file(path: Path) -> None:
    """Secrets for ``password_env``, from the file systemd's unit reads too: the MTA's pipe
    and commands run by hand get no unit environment. Variables already set win."""
    from dotenv import dotenv_values  # only a config with `env_file` pays for the import

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}:0: cannot read: {exc.strerror or exc}") from exc
    for name, value in dotenv_values(stream=io.StringIO(text)).items():
        if value is not None:
            os.environ.setdefault(name, value)


def load_yaml(file: Path) -> Any:
    """Parse YAML, turning read and syntax errors into ConfigError with a line number."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}:0: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}:0: not UTF-8 text: {exc.reason}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}:{line}: YAML syntax error: {problem}") from exc


def validate_yaml(model: type[M], file: Path, data: Any) -> M:
    """Validate data against a model, naming the line of each bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        root = yaml.compose(file.read_text(encoding="utf-8"))
        known = vocabulary(model)
        lines = []
        for err in exc.errors():
            loc = as_written(root, err["loc"])
            lines.append(f"{file}:{line_of(root, loc)}: {_dotted(loc)}: {_message(err, known)}")
        raise ConfigError("\n".join(lines)) from exc


def line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The 1-based line of the deepest YAML node that the error location reaches."""
    line = node.start_mark.line + 1 if node is not None else 0
    for key in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    child = v
                    line = k.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def as_written(root: yaml.Node | None, loc: Sequence[int | str]) -> list[int | str]:
    """The location as the file spells it: the list of agents may stand under `agents.team`
    (the settings hold it as `agents`)."""
    found = list(loc)
    if len(found) < 2 or found[0] != "agents" or not isinstance(found[1], int):
        return found
    if not isinstance(root, yaml.MappingNode):
        return found
    agents = next((v for k, v in root.value if k.value == "agents"), None)
    return ["agents", "team", *found[1:]] if isinstance(agents, yaml.MappingNode) else found


def _dotted(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc) or "(top)"


def vocabulary(model: type[BaseModel]) -> set[str]:
    """Every key a model tree accepts, to suggest the one an admin probably meant."""
    found: set[str] = set()
    todo: list[Any] = [model]
    seen: set[Any] = set()
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        if isinstance(item, type) and issubclass(item, BaseModel):
            for name, info in item.model_fields.items():
                found.add(info.alias or name)
                todo.append(info.annotation)
        else:
            todo.extend(get_args(item))
    return found


REMOVED = {
    "default_priority": "no longer used: the priority of a ticket no rule sorts is "
    "`defaults: {priority: ...}` in rules.yaml",
}
"""Keys that configurations once had, with what to do instead."""


def _message(err: Any, known: set[str]) -> str:
    if err["type"] == "extra_forbidden" and err["loc"][-1] in REMOVED:
        return str(REMOVED[err["loc"][-1]])
    if err["type"] == "extra_forbidden":
        close = get_close_matches(str(err["loc"][-1]), sorted(known), n=1, cutoff=0.7)
        return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    return str(err["msg"]).removeprefix("Value error, ")


def read_secret(secret: Secret, what: str) -> str | None:
    """The password from the named environment variable or file, if any is configured."""
    if secret.password_env:
        value = os.environ.get(secret.password_env)
        if value is None:
            raise ConfigError(f"{what}: environment variable {secret.password_env} is not set")
        return value
    if secret.password_file:
        try:
            return secret.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {secret.password_file}: {exc}") from exc
    return None


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths in a config file count from that file's folder, not from the cwd."""

    def fix(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else base / p

    data_dir = fix(settings.data_dir) or settings.data_dir
    database = settings.database
    prefix = "sqlite:///"
    if database.startswith(prefix) and not database[len(prefix) :].startswith("/"):
        database = prefix + str(base / database[len(prefix) :])
    outgoing = settings.outgoing.model_copy(
        update={
            "maildir": fix(settings.outgoing.maildir) or settings.outgoing.maildir,
            "smtp": _fix_secret(settings.outgoing.smtp, fix),
        }
    )
    mailboxes = []
    for mailbox in settings.mailboxes:
        oauth2 = mailbox.oauth2
        if oauth2 is not None:
            oauth2 = oauth2.model_copy(
                update={"token_file": fix(oauth2.token_file) or oauth2.token_file}
            )
        fixed = _fix_secret(mailbox, fix)
        assert fixed is not None
        mailboxes.append(fixed.model_copy(update={"oauth2": oauth2}))
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "database": database,
            "secret_file": fix(settings.secret_file) or settings.secret_file,
            "env_file": fix(settings.env_file) or settings.env_file,
            "rules": fix(settings.rules) or settings.rules,
            "templates": fix(settings.templates) or settings.templates,
            "brands": {
                address: brand.model_copy(
                    update={"templates": fix(brand.templates) or brand.templates}
                )
                for address, brand in settings.brands.items()
            },
            "outgoing": outgoing,
            "mailboxes": mailboxes,
        }
    )


S = TypeVar("S", bound=Secret)


def _fix_secret(secret: S | None, fix: Callable[[Path | None], Path | None]) -> S | None:
    if secret is None or secret.password_file is None:
        return secret
    return secret.model_copy(
        update={"password_file": fix(secret.password_file) or secret.password_file}
    )
