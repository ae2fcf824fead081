"""What the plugin's hooks and fixtures share through pytest's stash: one key per fact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from chaos.config import RunConfig
from chaos.context import RunContext
from chaos.progress import ProgressLog
from chaos.steady import Steady

if TYPE_CHECKING:
    from chaos.explore import Explorer
    from chaos.load import Loads
    from chaos.records import ExperimentRecord
    from chaos.schedules import ExploreOptions

CONFIG = pytest.StashKey[RunConfig]()
RECORDS: pytest.StashKey[list[ExperimentRecord]] = pytest.StashKey()
ENVIRONMENT = pytest.StashKey[dict[str, Any]]()
EVIDENCE = pytest.StashKey[dict[str, Any]]()
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
STEADY = pytest.StashKey[Steady]()
SLOS = pytest.StashKey[dict[str, float]]()
LOADS: pytest.StashKey[Loads] = pytest.StashKey()  # every load the test started
CONTEXT = pytest.StashKey[RunContext]()
FAILURE = pytest.StashKey[BaseException]()  # what ended the test, for its failure category
PROGRESS = pytest.StashKey[ProgressLog]()
ASKED = pytest.StashKey[int]()  # experiments collected: what the run was asked to run
EXPLORE: pytest.StashKey[ExploreOptions] = pytest.StashKey()  # the run's exploration options
EXPLORER: pytest.StashKey[Explorer] = pytest.StashKey()  # the test's explorer, if it explores
