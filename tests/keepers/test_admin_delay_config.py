"""The owner's execution delay in a network file: 2 days on a public network unless set,
never under 1 day there; a local chain may use a short one."""

from __future__ import annotations

import pytest
import yaml

from keepers.base.errors import SentinelError
from keepers.settings.network import NETWORKS_DIR, load_network_spec

DAY = 24 * 3600


def spec_with(tmp_path, base: str, delay: int | None):
    """The shipped ``base`` network file with ``admin_delay_seconds`` set (None: removed)."""
    document = yaml.safe_load((NETWORKS_DIR / f"{base}.yaml").read_text())
    document.pop("admin_delay_seconds")
    if delay is not None:
        document["admin_delay_seconds"] = delay
    path = tmp_path / "network.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_network_spec(path)


def test_shipped_files():
    assert load_network_spec(NETWORKS_DIR / "sepolia.yaml").admin_delay == 2 * DAY
    assert load_network_spec(NETWORKS_DIR / "local.yaml").admin_delay == 600


@pytest.mark.parametrize("base, expected", [("sepolia", 2 * DAY), ("local", 0)])
def test_unset__defaults_by_kind(tmp_path, base, expected):
    assert spec_with(tmp_path, base, None).admin_delay == expected


@pytest.mark.parametrize("delay", [0, DAY - 1])
def test_public__under_a_day__names_the_field(tmp_path, delay):
    with pytest.raises(SentinelError, match=r"admin_delay_seconds: a public network needs at least 86400 s"):
        spec_with(tmp_path, "sepolia", delay)


def test_above_30_days__names_the_field(tmp_path):
    with pytest.raises(SentinelError, match=r"admin_delay_seconds: Input should be less than or equal to 2592000"):
        spec_with(tmp_path, "local", 30 * DAY + 1)
