"""Which of NI's tests the harness runs: X-series tests within the card's scope.

In scope: AO, DO/DI, AI voltage, counter output, timing/triggers/routes, events,
device and system attributes, and the stream readers/writers for those.
Out of scope (listed below by file or test): counter input, AI measurement types
other than voltage, TEDS, power, watchdog timers, NI MAX storage (persisted
channels) and TDMS logging.
"""

from __future__ import annotations

# NI's fixtures that stand for an X-series card (PCIe-6363).
X_SERIES_FIXTURES = frozenset(
    {
        "real_x_series_device",
        "real_x_series_device_32dio",
        "real_x_series_multiplexed_device",
        "sim_6363_device",
    }
)

OUT_OF_SCOPE: tuple[str, ...] = (
    "tests/acceptance/test_internationalization.py",  # TDMS logging file names
    "tests/component/system/test_watchdog_properties.py",
    "tests/legacy/test_watchdog.py",
    "tests/component/system/storage/",  # NI MAX persisted channels
    "tests/legacy/test_teds.py",
    "tests/component/task/channels/test_ci_channel.py",  # counter input
    "tests/component/test_stream_readers_ci.py",
    "tests/legacy/test_stream_counter_readers_writers.py",  # CO read back by CI
    "tests/legacy/test_read_write.py::TestCounterReadWrite",
    "tests/legacy/test_read_write.py::TestPowerRead",
)

# Files where only some tests are in scope: the test-name prefixes kept.
PARTLY_IN_SCOPE: dict[str, tuple[str, ...]] = {
    "tests/component/task/channels/test_ai_channel.py": (
        "test___task___add_ai_voltage_chan___",
        "test___task___add_ai_chans_with_name___",
    ),
    "tests/legacy/test_channel_creation.py": (
        "TestAnalogCreateChannels::test_create_ai_voltage_chan[",
    ),
}


def in_scope(nodeid: str) -> bool:
    """Whether a test (by node id) is within the simulated card's scope."""
    if any(nodeid.startswith(prefix) for prefix in OUT_OF_SCOPE):
        return False
    path, _, name = nodeid.partition("::")
    kept = PARTLY_IN_SCOPE.get(path)
    return kept is None or name.startswith(kept)
