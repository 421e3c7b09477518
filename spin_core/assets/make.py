"""`spin-repro assets CONFIG...`: by hand, what rules asset_model, asset_chat_data and asset_bigbench
make in a workflow run, in the current folder (assets/ and results/assets/), for the assets the
merged configs name."""

from __future__ import annotations

import logging
from pathlib import Path

from ..configfile import load_configs
from ..names import ASSET_BIGBENCH, ASSET_CHAT_DATA, ASSET_MODEL, ASSET_RECORDS

log = logging.getLogger(__name__)


def make_assets(configs: list[Path], /) -> None:
    """Every asset the merged configs use (an existing one, with its record, is kept as it is)."""
    from .bigbench import make_bigbench_asset
    from .chat_model import make_model_asset
    from .sharegpt import make_chat_data_asset

    cfg = load_configs(configs)
    a = cfg.assets
    made = {"model": ASSET_MODEL, "chat_data": ASSET_CHAT_DATA, "bigbench": ASSET_BIGBENCH}
    for name in cfg.assets_used:  # the config's validation made sure each is configured
        if Path(ASSET_RECORDS[name]).exists() and Path(made[name]).exists():
            log.info("assets: %s already made (%s)", name, ASSET_RECORDS[name])
            continue
        if name == "model":
            make_model_asset(a.model, Path(ASSET_MODEL), Path(ASSET_RECORDS["model"]), a.cache)
        elif name == "chat_data":
            make_chat_data_asset(
                a.chat_data, cfg.sft.model, Path(ASSET_CHAT_DATA), Path(ASSET_RECORDS["chat_data"]), a.cache
            )
        else:
            make_bigbench_asset(a.bigbench, Path(ASSET_BIGBENCH), Path(ASSET_RECORDS["bigbench"]), a.cache)
    log.info("assets: %s", {n: made[n] for n in cfg.assets_used} or "none configured")
