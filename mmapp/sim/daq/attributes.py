"""Attribute tables: every attribute a client reads or sets is one entry.

An entry names the attribute's id, its type, its default (a value or a function
of the channel/task) and, for channel attributes, the channel kinds it applies
to. `field` ties it to a field of the card's state machine (so setting it
changes what the card does); otherwise the value is kept in the object's
``attrs`` dictionary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nidaqmx.constants import (
    AcquisitionType,
    DigitalDriveType,
    Edge,
    Level,
    OverwriteMode,
    ReadRelativeTo,
    RegenerationMode,
    TriggerType,
    WaitMode,
    WriteRelativeTo,
)

from mmapp.sim.daq.errors import ATTR_NOT_SUPPORTED, INVALID_ATTRIBUTE_VALUE, DaqmxError


@dataclass(frozen=True)
class Attr:
    """One attribute: id, type ('f64', 'i32', 'u32', 'u64', 'bool', 'str')."""

    id: int
    name: str
    type: str
    default: Any = None  # value, or a function of the channel/task
    kinds: tuple[str, ...] | None = None  # channel kinds it applies to
    field: str | None = None  # state-machine field it reads and writes
    choices: tuple[int, ...] | None = None  # valid enum values
    readonly: bool = False

    def value_of(self, obj: Any) -> Any:
        """The current value for `obj` (a channel or a task)."""
        if self.field is not None:
            return getattr(obj, self.field)
        if self.id in obj.attrs:
            return obj.attrs[self.id]
        return self.default(obj) if callable(self.default) else self.default


def _a(id_: int, name: str, type_: str, default: Any = None, **kw: Any) -> Attr:
    return Attr(id_, name, type_, default, **kw)


def _enum(cls: Any) -> tuple[int, ...]:
    return tuple(int(m.value) for m in cls)


AI_MEAS_TYPE, VOLTAGE_WITH_EXCIT, AI_CUSTOM_SCALE = 0x695, 10323, 0x17E0
AI_VOLTAGE_UNITS = 0x1094
AI_EXCIT_SRC, AI_EXCIT_VAL, AI_EXCIT_USE_FOR_SCALING = 0x17F4, 0x17F5, 0x17FC
AO, AI, DO, DI, CO = ("ao",), ("ai",), ("do",), ("di",), ("co",)
_lines: Callable[[Any], int] = lambda ch: len(ch.lines)  # noqa: E731

CHANNEL: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(0x187F, "chan_type", "i32", lambda ch: ch.chan_type, readonly=True),
        _a(0x18F5, "physical_channel", "str", lambda ch: ch.physical, readonly=True),
        _a(0x1926, "description", "str", ""),
        _a(0x18F6, "chan_is_global", "bool", False, readonly=True),
        # AO
        _a(0x1186, "ao_max", "f64", kinds=AO, field="max_v"),
        _a(0x1187, "ao_min", "f64", kinds=AO, field="min_v"),
        _a(0x1108, "ao_output_type", "i32", 10322, kinds=AO, readonly=True),
        _a(0x1184, "ao_voltage_units", "i32", 10348, kinds=AO),
        _a(0x182E, "ao_dac_rng_high", "f64", 10.0, kinds=AO),
        _a(0x182D, "ao_dac_rng_low", "f64", -10.0, kinds=AO),
        _a(0x182C, "ao_resolution", "f64", 16.0, kinds=AO, readonly=True),
        _a(0x182B, "ao_resolution_units", "i32", 10109, kinds=AO, choices=(10109,)),
        _a(0x188E, "ao_term_cfg", "i32", 10083, kinds=AO),  # RSE
        _a(0x2240, "ao_idle_output_behavior", "i32", 12526, kinds=AO),
        _a(0x1830, "ao_dac_ref_allow_conn_to_gnd", "bool", False, kinds=AO),
        _a(0x130, "ao_dac_ref_conn_to_gnd", "bool", False, kinds=AO),
        _a(0x1832, "ao_dac_ref_val", "f64", 10.0, kinds=AO),
        # AI
        _a(0x17DD, "ai_max", "f64", kinds=AI, field="ai_max"),
        _a(0x17DE, "ai_min", "f64", kinds=AI, field="ai_min"),
        _a(0x695, "ai_meas_type", "i32", 10322, kinds=AI, readonly=True),
        _a(0x1094, "ai_voltage_units", "i32", 10348, kinds=AI),
        _a(0x17E0, "ai_custom_scale", "str", "", kinds=AI),
        _a(0x1097, "ai_term_cfg", "i32", kinds=AI, field="term_cfg"),
        _a(0x1815, "ai_rng_high", "f64", kinds=AI, field="rng_high"),
        _a(0x1816, "ai_rng_low", "f64", kinds=AI, field="rng_low"),
        _a(0x1818, "ai_gain", "f64", 1.0, kinds=AI),
        _a(0x22DA, "ai_raw_samp_size", "u32", 16, kinds=AI, readonly=True),
        _a(0x1765, "ai_resolution", "f64", 16.0, kinds=AI, readonly=True),
        _a(0x17F4, "ai_excit_src", "i32", 10230, kinds=AI),  # none
        _a(0x17F5, "ai_excit_val", "f64", 0.0, kinds=AI),
        _a(0x17F6, "ai_excit_voltage_or_current", "i32", 10322, kinds=AI),
        _a(0x17FC, "ai_excit_use_for_scaling", "bool", False, kinds=AI),
        _a(0x22D9, "ai_lossy_lsb_removal_compressed_samp_size", "u32", 16, kinds=AI),
        # DO / DI
        _a(0x2179, "do_num_lines", "u32", _lines, kinds=DO, readonly=True),
        _a(0x2178, "di_num_lines", "u32", _lines, kinds=DI, readonly=True),
        _a(
            0x1137,
            "do_output_drive_type",
            "i32",
            DigitalDriveType.ACTIVE_DRIVE.value,
            kinds=DO,
            choices=_enum(DigitalDriveType),
        ),
        _a(0x1133, "do_invert_lines", "bool", False, kinds=DO),
        _a(0x793, "di_invert_lines", "bool", False, kinds=DI),
        _a(0x18F3, "do_tristate", "bool", False, kinds=DO),
        _a(0x1890, "di_tristate", "bool", True, kinds=DI),
        _a(0x21D6, "di_dig_fltr_enable", "bool", False, kinds=DI),
        _a(0x21D7, "di_dig_fltr_min_pulse_width", "f64", 0.0, kinds=DI),
        _a(0x2266, "do_data_xfer_mech", "i32", 10054, kinds=DO),  # DMA
        _a(0x2263, "di_data_xfer_mech", "i32", 10054, kinds=DI),
        _a(0x2265, "do_use_only_on_brd_mem", "bool", False, kinds=DO),
        # CO
        _a(0x18B5, "co_output_type", "i32", kinds=CO, field="output_type"),
        _a(0x1178, "co_pulse_freq", "f64", kinds=CO, field="freq_hz"),
        _a(0x1176, "co_pulse_duty_cyc", "f64", kinds=CO, field="duty"),
        _a(0x18BA, "co_pulse_high_time", "f64", kinds=CO, field="high_time"),
        _a(0x18BB, "co_pulse_low_time", "f64", kinds=CO, field="low_time"),
        _a(0x1169, "co_pulse_high_ticks", "u32", kinds=CO, field="high_ticks"),
        _a(0x1171, "co_pulse_low_ticks", "u32", kinds=CO, field="low_ticks"),
        _a(
            0x298,
            "co_pulse_ticks_initial_delay",
            "u32",
            kinds=CO,
            field="initial_delay",
        ),
        _a(0x299, "co_pulse_freq_initial_delay", "f64", kinds=CO, field="delay_s"),
        _a(0x18BC, "co_pulse_time_initial_delay", "f64", kinds=CO, field="delay_s"),
        _a(0x1170, "co_pulse_idle_state", "i32", kinds=CO, field="idle_state"),
        _a(0x18D5, "co_pulse_freq_units", "i32", 10373, kinds=CO),  # Hz
        _a(0x18D6, "co_pulse_time_units", "i32", 10364, kinds=CO),  # seconds
        _a(0x339, "co_ctr_timebase_src", "str", kinds=CO, field="source"),
        _a(
            0x18E1,
            "co_pulse_term",
            "str",
            lambda ch: "/" + ch.physical.replace("ctr", "Ctr") + "InternalOutput",
            kinds=CO,
        ),
        _a(0x190E, "co_pulse_done", "bool", False, kinds=CO, readonly=True),
        _a(0x294, "co_output_state", "i32", Level.LOW.value, kinds=CO, readonly=True),
        _a(0x293, "co_count", "u32", 0, kinds=CO, readonly=True),
        _a(0x18F1, "co_ctr_timebase_rate", "f64", 100_000_000.0, kinds=CO),
    )
}

SAMP_CLK_TIMEBASE_HZ = 100_000_000.0  # X-series: the sample clock divides 100 MHz


TIMING: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(0x1344, "samp_clk_rate", "f64", field="samp_clk_rate"),
        _a(0x1310, "samp_quant_samp_per_chan", "u64", field="samps_per_chan"),
        _a(
            0x1300,
            "samp_quant_samp_mode",
            "i32",
            field="samp_mode",
            choices=_enum(AcquisitionType),
        ),
        _a(0x1347, "samp_timing_type", "i32", field="timing_type"),
        _a(0x1852, "samp_clk_src", "str", field="samp_clk_src"),
        _a(
            0x1301,
            "samp_clk_active_edge",
            "i32",
            field="active_edge",
            choices=_enum(Edge),
        ),
        _a(0x22C8, "samp_clk_max_rate", "f64", field="max_rate", readonly=True),
        _a(0x2F1B, "samp_clk_term", "str", field="samp_clk_term", readonly=True),
        _a(
            0x1308,
            "samp_clk_timebase_src",
            "str",
            lambda t: f"/{t.device}/100MHzTimebase",
        ),
        _a(0x1303, "samp_clk_timebase_rate", "f64", SAMP_CLK_TIMEBASE_HZ),
        _a(0x18EB, "samp_clk_timebase_div", "u32", field="samp_clk_timebase_div"),
        _a(0x2EDB, "samp_clk_dig_fltr_enable", "bool", False),
        _a(0x2F1F, "samp_clk_overrun_behavior", "i32", 15859),
        _a(0x21A0, "simultaneous_ao_enable", "bool", False),
        _a(0x2EE5, "sync_pulse_src", "str", ""),
        _a(0x22FB, "delay_from_samp_clk_delay", "f64", 0.0),
        _a(0x1317, "delay_from_samp_clk_delay_units", "i32", 10304),
        _a(0x2EEA, "sample_timing_engine", "u32", 0),
        _a(0x3139, "first_samp_timestamp_enable", "bool", False),
    )
}

TRIGGER: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(
            0x1393,
            "start_trig_type",
            "i32",
            field="start_type",
            choices=(TriggerType.NONE.value, TriggerType.DIGITAL_EDGE.value),
        ),
        _a(0x1407, "start_dig_edge_src", "str", field="start_source"),
        _a(
            0x1404,
            "start_dig_edge_edge",
            "i32",
            field="start_edge",
            choices=_enum(Edge),
        ),
        _a(0x190F, "start_retriggerable", "bool", field="retriggerable"),
        _a(0x1408, "start_trig_delay", "f64", 0.0),
        _a(0x1409, "start_trig_delay_units", "i32", 10304),
        _a(0x1406, "start_dig_edge_dig_sync_enable", "bool", False),
        _a(0x2223, "start_dig_edge_dig_fltr_enable", "bool", False),
        _a(0x2224, "start_dig_edge_dig_fltr_min_pulse_width", "f64", 0.0),
        _a(0x2226, "start_dig_edge_dig_fltr_timebase_rate", "f64", 0.0),
        _a(0x2225, "start_dig_edge_dig_fltr_timebase_src", "str", ""),
        _a(0x1396, "start_anlg_edge_lvl", "f64", 0.0),
        _a(0x1397, "start_anlg_edge_slope", "i32", 10280),
        _a(0x1398, "start_anlg_edge_src", "str", ""),
        _a(
            0x1414,
            "arm_start_trig_type",
            "i32",
            field="arm_type",
            choices=(TriggerType.NONE.value, TriggerType.DIGITAL_EDGE.value),
        ),
        _a(0x1417, "arm_start_dig_edge_src", "str", field="arm_source"),
        _a(
            0x1415,
            "arm_start_dig_edge_edge",
            "i32",
            field="arm_edge",
            choices=_enum(Edge),
        ),
        _a(
            0x1366,
            "pause_trig_type",
            "i32",
            field="pause_type",
            choices=(
                TriggerType.NONE.value,
                TriggerType.DIGITAL_LEVEL.value,
                TriggerType.ANALOG_LEVEL.value,
                TriggerType.ANALOG_WINDOW.value,
            ),
        ),
        _a(0x1379, "pause_dig_lvl_src", "str", field="pause_source"),
        _a(
            0x1380,
            "pause_dig_lvl_when",
            "i32",
            field="pause_when",
            choices=_enum(Level),
        ),
        _a(0x1419, "ref_trig_type", "i32", field="ref_type"),
        _a(0x1434, "ref_dig_edge_src", "str", ""),
        _a(0x1430, "ref_dig_edge_edge", "i32", Edge.RISING.value, choices=_enum(Edge)),
        _a(0x1445, "ref_pretrig_samples", "u32", 2),
        _a(0x311D, "ref_retriggerable", "bool", False),
    )
}


def _default_read(task: Any) -> int:
    """Samples per channel a 'read all' reads: a finite task's whole
    acquisition (unless read_all_avail_samp), else what is available."""
    if task.on_demand:
        return 1
    if task.finite and not task.attrs.get(0x1215, False):
        return int(task.samps_per_chan)
    return int(task.avail_samples)


READ: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(0x1826, "auto_start", "bool", True),
        _a(0x1215, "read_all_avail_samp", "bool", False),
        _a(0x1223, "avail_samp_per_chan", "u32", field="avail_samples", readonly=True),
        _a(
            0x192A,
            "total_samp_per_chan_acquired",
            "u64",
            field="acquired",
            readonly=True,
        ),
        _a(0x1221, "curr_read_pos", "u64", field="read_pos", readonly=True),
        _a(0x217B, "num_chans", "u32", lambda t: len(t.channels), readonly=True),
        _a(0x190B, "offset", "i32", 0),
        _a(
            0x190A,
            "relative_to",
            "i32",
            ReadRelativeTo.CURRENT_READ_POSITION.value,
            choices=_enum(ReadRelativeTo),
        ),
        _a(
            0x1211,
            "overwrite",
            "i32",
            OverwriteMode.DO_NOT_OVERWRITE_UNREAD_SAMPLES.value,
            choices=_enum(OverwriteMode),
        ),
        _a(0x1823, "channels_to_read", "str", lambda t: t.channel_names()),
        _a(0x2232, "wait_mode", "i32", WaitMode.YIELD.value, choices=_enum(WaitMode)),
        _a(0x22B0, "sleep_time", "f64", 0.001),
        _a(0x217A, "raw_data_width", "u32", lambda t: 2 if t.kind == "ai" else 4),
        _a(0x2EC5, "logging_mode", "i32", 10231),
        _a(0x2EC4, "logging_file_path", "str", ""),
        _a(0x2EC7, "logging_tdms_operation", "i32", 15844),
        _a(0x2EC6, "logging_tdms_group_name", "str", ""),
        _a(0x2FE3, "logging_pause", "bool", False),
        _a(0x2FC3, "logging_file_write_size", "u32", 0),
        _a(0x2FC6, "logging_file_preallocation_size", "u64", 0),
        _a(0x2A0A, "open_current_loop_chans", "str", "", readonly=True),
        _a(0x2A09, "open_current_loop_chans_exist", "bool", False, readonly=True),
        _a(0x1224, "read_all_avail_samp", "bool", False),
        _a(0x31E8, "default_num_samps_to_read", "u32", _default_read, readonly=True),
        _a(
            0x217C,
            "di_num_booleans_per_chan",
            "u32",
            lambda t: max((len(c.lines) for c in t.channels), default=1),
            readonly=True,
        ),
    )
}

WRITE: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(
            0x1453,
            "regen_mode",
            "i32",
            field="regen_mode",
            choices=_enum(RegenerationMode),
        ),
        _a(
            0x192B,
            "total_samp_per_chan_generated",
            "u64",
            field="generated_now",
            readonly=True,
        ),
        _a(0x1458, "curr_write_pos", "u64", field="write_pos", readonly=True),
        _a(0x1460, "space_avail", "u32", field="space_avail", readonly=True),
        _a(0x217E, "num_chans", "u32", lambda t: len(t.channels), readonly=True),
        _a(0x190D, "offset", "i32", 0),
        _a(
            0x190C,
            "relative_to",
            "i32",
            WriteRelativeTo.CURRENT_WRITE_POSITION.value,
            choices=_enum(WriteRelativeTo),
        ),
        _a(
            0x217F,
            "digital_lines_bytes_per_chan",
            "u32",
            lambda t: max((len(c.lines) for c in t.channels), default=1),
            readonly=True,
        ),
        _a(0x22B1, "wait_mode", "i32", WaitMode.YIELD.value, choices=_enum(WaitMode)),
        _a(0x22B2, "sleep_time", "f64", 0.001),
        _a(0x217D, "raw_data_width", "u32", lambda t: 2 if t.kind == "ao" else 4),
        _a(0x29EB, "open_current_loop_chans", "str", "", readonly=True),
        _a(0x29EA, "open_current_loop_chans_exist", "bool", False, readonly=True),
        _a(0x22B3, "next_write_is_last", "bool", False),
    )
}

BUFFER: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(0x186C, "input_buf_size", "u32", field="input_buf_size"),
        _a(0x186D, "output_buf_size", "u32", field="output_buf_size"),
        _a(0x18B2, "input_onbrd_buf_size", "u32", 4095, readonly=True),
        _a(0x230B, "output_onbrd_buf_size", "u32", 8191),
    )
}

EXPORT: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(0x1663, "samp_clk_output_term", "str", ""),
        _a(0x1664, "samp_clk_pulse_polarity", "i32", 10280),
        _a(0x186B, "samp_clk_output_behavior", "i32", 10216),
        _a(0x584, "start_trig_output_term", "str", ""),
        _a(0x590, "ref_trig_output_term", "str", ""),
        _a(0x1617, "ctr_out_event_output_term", "str", ""),
        _a(0x22B6, "rdy_for_xfer_event_lvl_active_lvl", "i32", 10095),
        _a(0x22B5, "rdy_for_xfer_event_output_term", "str", ""),
        _a(0x2F3, "ai_conv_clk_output_term", "str", ""),
        _a(0x2FC, "adv_cmplt_event_output_term", "str", ""),
    )
}


CAL_USER_INFO_MAX = 8  # characters the card's calibration memory keeps (assumed)


@dataclass
class CalInfo:
    """The device's calibration information (values set by the client)."""

    attrs: dict[int, Any] = field(default_factory=dict)
    _user_info: str = ""

    @property
    def user_info(self) -> str:
        """User-defined calibration text (longer text is truncated, as DAQmx
        does with a warning)."""
        return self._user_info

    @user_info.setter
    def user_info(self, value: str) -> None:
        self._user_info = str(value)[:CAL_USER_INFO_MAX]


CAL_INFO: dict[int, Attr] = {
    a.id: a
    for a in (
        _a(0x1860, "self_cal_supported", "bool", True, readonly=True),
        _a(0x1864, "self_cal_last_temp", "f64", 0.0, readonly=True),
        _a(0x1867, "ext_cal_last_temp", "f64", 0.0, readonly=True),
        _a(0x1868, "ext_cal_recommended_interval", "u32", 24, readonly=True),  # months
        _a(0x223B, "cal_dev_temp", "f64", 0.0, readonly=True),
        _a(0x1861, "cal_user_defined_info", "str", field="user_info"),
        _a(
            0x191C,
            "cal_user_defined_info_max_size",
            "u32",
            CAL_USER_INFO_MAX,
            readonly=True,
        ),
    )
}

GROUPS = {
    "cal": CAL_INFO,
    "chan": CHANNEL,
    "timing": TIMING,
    "trig": TRIGGER,
    "read": READ,
    "write": WRITE,
    "buffer": BUFFER,
    "exported_signal": EXPORT,
}


def lookup(group: str, attribute: int, kind: str | None = None) -> Attr:
    """The table entry, or DAQmx's 'not supported' error."""
    attr = GROUPS[group].get(attribute)
    if attr is None or (attr.kinds is not None and kind not in attr.kinds):
        raise DaqmxError(ATTR_NOT_SUPPORTED, f"Property: 0x{attribute:X}")
    return attr


def get(group: str, obj: Any, attribute: int, kind: str | None = None) -> Any:
    """Read an attribute of a channel or task."""
    return lookup(group, attribute, kind).value_of(obj)


def set_(
    group: str, obj: Any, attribute: int, value: Any, kind: str | None = None
) -> None:
    """Set an attribute (validated against its table entry)."""
    attr = lookup(group, attribute, kind)
    if attr.readonly:
        raise DaqmxError(ATTR_NOT_SUPPORTED, f"Property: {attr.name} is read-only")
    if attr.choices is not None and int(value) not in attr.choices:
        raise DaqmxError(
            INVALID_ATTRIBUTE_VALUE,
            f"Property: DAQmx_{attr.name}\nRequested Value: {value}",
        )
    if attr.field is not None:
        setattr(obj, attr.field, value)
    else:
        obj.attrs[attr.id] = value


def reset(group: str, obj: Any, attribute: int, kind: str | None = None) -> None:
    """Back to the default."""
    attr = lookup(group, attribute, kind)
    if attr.field is not None:
        obj.reset_field(attr.field)
    else:
        obj.attrs.pop(attr.id, None)
