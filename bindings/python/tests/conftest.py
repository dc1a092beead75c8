"""Shared fixtures. The suite runs against the package assembled in the build tree
(PYTHONPATH=<build>/python, set by ctest)."""

import pytest

import dsabi

# A small ZeRO-2 config: 32 = micro * 2 (accumulation) * world size.
BASE_CONFIG = {
    "train_batch_size": 32,
    "gradient_accumulation_steps": 2,
    "optimizer": {"type": "AdamW", "params": {"lr": 0.0003, "betas": [0.9, 0.95], "weight_decay": 0.01}},
    "bf16": {"enabled": True},
    "zero_optimization": {"stage": 2, "overlap_comm": False},
}


@pytest.fixture
def config():
    """BASE_CONFIG parsed for 4 data-parallel ranks, closed after the test."""
    with dsabi.Config.parse(BASE_CONFIG, world_size=4) as cfg:
        yield cfg
