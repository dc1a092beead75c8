"""Shared fixtures. The suite runs against the package assembled in the build tree
(PYTHONPATH=<build>/python, set by ctest). test_comm.py also runs under dsrun, one pytest per rank."""

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


@pytest.fixture(scope="session")
def comm():
    """The job's communicator, from the environment (dsrun sets it; a plain run is a job of one
    rank), with the comms logger on. One per process: every rank runs the same tests in the same
    order, so their collectives match."""
    logger = {"train_micro_batch_size_per_gpu": 1, "comms_logger": {"enabled": True, "prof_all": True}}
    with dsabi.Config.parse(logger) as cfg, dsabi.Comm(timeout=30, config=cfg) as c:
        yield c
