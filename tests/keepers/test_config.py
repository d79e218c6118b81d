"""The keeper's configuration: priority of sources, and one line for every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from keepers import PROJECT_ROOT
from keepers.base.errors import SentinelError
from keepers.settings.keeper import load_keeper_config

USER = {
    "id": "dora", "test_account": 6, "tokens": ["WETH"], "sizing": {"quote_amount": 100},
}


def write(folder: Path, settings: dict | None = None, users: list | None = None) -> Path:
    users_file = folder / "users.yaml"
    users_file.write_text(yaml.safe_dump({"users": users if users is not None else [USER]}))
    config = folder / "keeper.yaml"
    config.write_text(yaml.safe_dump({"users_file": str(users_file), **(settings or {})}))
    return config


def test_shipped_config_loads_the_example_users():
    config = load_keeper_config(environ={})
    assert [user.id for user in config.users] == ["alice", "bob", "carol"]
    assert config.settings.store_url == "sqlite:///data/state/sentinel.db"
    assert config.settings.resolved_store_url() == f"sqlite:///{PROJECT_ROOT / 'data/state/sentinel.db'}"


def test_priority_is_command_line_then_environment_then_file(tmp_path):
    path = write(tmp_path, {"cycle_interval_seconds": 30, "dry_run": False, "tolerance_bps": 20})
    environ = {"SENTINEL_CYCLE_INTERVAL_SECONDS": "45", "SENTINEL_DRY_RUN": "true"}
    config = load_keeper_config(path, {"cycle_interval_seconds": 90, "dry_run": None}, environ)
    assert config.settings.cycle_interval_seconds == 90  # command line wins
    assert config.settings.dry_run is True  # environment over file (the option was not given)
    assert config.settings.tolerance_bps == 20  # file over default
    assert config.settings.lease_seconds == 300  # default


def test_sentinel_config_variable_names_the_file(tmp_path):
    path = write(tmp_path, {"cycle_interval_seconds": 7})
    assert load_keeper_config(environ={"SENTINEL_CONFIG": str(path)}).settings.cycle_interval_seconds == 7


def test_show_config_hides_the_store_password(tmp_path):
    path = write(tmp_path, {"store_url": "postgresql+psycopg://keeper:s3cret-pw@db.example:5432/sentinel"})
    shown = load_keeper_config(path, environ={}).settings.redacted()
    assert "s3cret-pw" not in str(shown)
    assert shown["store_url"] == "postgresql+psycopg://keeper:***@db.example:5432/sentinel"


def test_webhook_tokens_are_hidden_when_shown_and_in_errors(tmp_path):
    token = "xoxb7Hq2Zr9Lm4Vt8Kw3"
    path = write(tmp_path, {"webhooks": [{"url": f"https://hooks.slack.com/services/T1/B2/{token}", "format": "slack"}]})
    shown = load_keeper_config(path, environ={}).settings.redacted()
    assert shown["webhooks"][0]["url"] == "https://hooks.slack.com/services/T1/B2/***"
    path = write(tmp_path, {"webhooks": [{"url": f"ftp://hooks.example/{token}"}]})
    with pytest.raises(SentinelError, match=r"webhooks\[0\].url: not an http\(s\) URL") as raised:
        load_keeper_config(path, environ={})
    assert token not in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "users", "message"),
    [
        ({"cycle_interval_seconds": 0}, None, "keeper.yaml: cycle_interval_seconds: Input should be greater than or equal to 1"),
        ({"rotaton": "all"}, None, "keeper.yaml: rotaton: unknown key"),
        ({"rotation": "random"}, None, "keeper.yaml: rotation: Input should be 'all' or 'round_robin'"),
        ({"store_url": "not a url"}, None, "store_url: not a SQLAlchemy URL"),
        ({"metrics_port": 70_000}, None, "keeper.yaml: metrics_port: Input should be less than or equal to 65535"),
        ({"webhooks": [{"url": "https://hooks.example/x", "format": "teams"}]}, None,
         "keeper.yaml: webhooks[0].format: Input should be 'json', 'slack' or 'discord'"),
        ({"webhooks": [{"url": "https://hooks.example/x", "events": ["trades"]}]}, None,
         "keeper.yaml: webhooks[0].events[0]: Input should be 'trade', 'block', 'kill_switch', 'failure' or 'recovery'"),
        ({"webhooks": [{"url": "hooks.slack.com/services/T1/B2/c3"}]}, None,
         "keeper.yaml: webhooks[0].url: not an http(s) URL"),
        ({}, [{**USER, "sizing": {"quote_amount": 1, "vault_share": 0.5}}], "users[0] (dora).sizing: give exactly one"),
        ({}, [{**USER, "sizing": {"vault_share": 1.5}}], "users[0] (dora).sizing.vault_share: Input should be less than or equal to 1"),
        ({}, [{**USER, "address": "0x0000000000000000000000000000000000000001"}], "users[0] (dora): give exactly one of address"),
        ({}, [{**USER, "address": "0x12", "test_account": None}], "users[0] (dora).address: '0x12' is not a 20-byte hex address"),
        ({}, [USER, USER], "users: user ids must be unique; repeated: dora"),
        ({}, [{**USER, "id": "Dora!"}], "users[0] (Dora!).id: String should match pattern"),
        ({}, [{**USER, "risk": {"cooldwn": "P1D"}}], "users[0] (dora).risk.cooldwn: unknown key"),
        ({}, [{**USER, "risk": {"kill_switch_drawdown": 1.5}}], "users[0] (dora).risk.kill_switch_drawdown: Input should be less than 1"),
        ({}, [{**USER, "strategies": {"WBTC": ["macd"]}}], "users[0] (dora): strategies: ['WBTC'] not in this user's tokens"),
        ({}, [{**USER, "tokens": []}], "users[0] (dora).tokens: List should have at least 1 item"),
    ],
)
def test_bad_input_is_one_line_naming_file_and_field(tmp_path, settings, users, message):
    path = write(tmp_path, settings, users)
    with pytest.raises(SentinelError) as raised:
        load_keeper_config(path, environ={})
    text = str(raised.value)
    assert message in text
    assert "\n" not in text


def test_unknown_environment_variable_is_refused_with_a_hint(tmp_path):
    path = write(tmp_path)
    with pytest.raises(SentinelError, match=r"SENTINEL_STORE_URI: not a keeper setting \(did you mean 'SENTINEL_STORE_URL'\?\)"):
        load_keeper_config(path, environ={"SENTINEL_STORE_URI": "sqlite://"})


def test_the_node_timeout_variable_every_command_reads_is_not_refused_as_a_setting(tmp_path):
    config = load_keeper_config(write(tmp_path), environ={"SENTINEL_NODE_TIMEOUT_SECONDS": "30"})
    assert "node_timeout_seconds" not in config.settings.redacted()


def test_bad_environment_value_names_the_setting(tmp_path):
    path = write(tmp_path)
    with pytest.raises(SentinelError, match="lease_seconds: Input should be a valid integer"):
        load_keeper_config(path, environ={"SENTINEL_LEASE_SECONDS": "soon"})


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "keeper.yaml"
    path.write_text("cycle_interval_seconds: 60\nrotation: [all\n")
    with pytest.raises(SentinelError, match=r"keeper.yaml: not valid YAML at line 3"):
        load_keeper_config(path, environ={})


def test_missing_users_file_is_named(tmp_path):
    path = tmp_path / "keeper.yaml"
    path.write_text(yaml.safe_dump({"users_file": str(tmp_path / "nobody.yaml")}))
    with pytest.raises(SentinelError, match=r"nobody.yaml: cannot read \(No such file or directory\)"):
        load_keeper_config(path, environ={})


def test_unknown_user_gets_a_did_you_mean():
    config = load_keeper_config(environ={})
    with pytest.raises(SentinelError, match=r"--user alise: no such user \(did you mean 'alice'\?\)"):
        config.user("alise")
