"""The simulated card served over gRPC with the service `nidaqmx` itself ships.

The real `nidaqmx` client connects with ``GrpcSessionOptions`` exactly as it
would to NI's gRPC device server; errors travel as the real DAQmx status codes
(trailing metadata ``ni-error``), so client code sees ``nidaqmx.DaqError`` with
the driver's code.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import numpy as np
from nidaqmx._stubs import nidaqmx_pb2 as pb
from nidaqmx._stubs import nidaqmx_pb2_grpc as pb_grpc
from session_pb2 import Session

from mmapp.sim.daq import attributes, waveforms
from mmapp.sim.daq.ai import ai_codes
from mmapp.sim.daq.card import SimDaqDevice, SimTask
from mmapp.sim.daq.device import (
    AO_RANGE_V,
    DEVICE_ARRAYS,
    DEVICE_SCALARS,
    check_device,
    device_string_lists,
    expand_channels,
)
from mmapp.sim.daq.errors import (
    ATTR_NOT_SUPPORTED,
    FUNCTION_NOT_SUPPORTED_FOR_DEVICE_TASKS,
    INVALID_ATTRIBUTE_VALUE,
    INVALID_CHANNEL,
    INVALID_NUM_SAMPS_TO_WRITE,
    PHYS_CHAN_DEV_NOT_IN_TASK,
    READ_BUFFER_TOO_SMALL,
    DaqmxError,
    message_for,
)

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 512 * 1024 * 1024
DRIVER_VERSION = (24, 5, 0)
FINITE, CONTINUOUS = 10178, 10123
RISING = 10280
LEVEL_HIGH, LEVEL_LOW = 10192, 10214
GROUP_BY_CHANNEL = 0
ALLOW_REGENERATION, DONT_ALLOW_REGENERATION = 10097, 10158
CHAN_TYPE = {"ao": 10102, "do": 10153, "co": 10132}
X_SERIES_DAQ = 15858
BUS_PCIE = 13612
CAL_DATE = (2024, 1, 15, 9, 30)  # the simulated card's last calibration


def _raw(request: Any, name: str) -> int:
    """An enum field given either as the enum or as its `_raw` twin."""
    raw = getattr(request, f"{name}_raw", 0)
    return int(raw) if raw else int(getattr(request, name, 0))


def _rpc(method: Callable) -> Callable:
    """Turn DaqmxError into the status the nidaqmx client understands."""

    @functools.wraps(method)
    def wrapper(self: SimDaqServicer, request: Any, context: grpc.ServicerContext):
        self.device.calls.append(method.__name__)
        try:
            return method(self, request, context)
        except DaqmxError as exc:
            context.set_trailing_metadata((("ni-error", str(exc.code)),))
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        except Exception as exc:  # a bug in the simulation: say so, do not hang
            logger.exception("simulated DAQ: %s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    return wrapper


class SimDaqServicer(pb_grpc.NiDAQmxServicer):
    """Every RPC the nidaqmx backend makes for AO, DO and counter output tasks."""

    def __init__(self, device: SimDaqDevice) -> None:
        self.device = device
        service = pb.DESCRIPTOR.services_by_name["NiDAQmx"]
        for m in service.methods:
            if getattr(type(self), m.name) is not getattr(
                pb_grpc.NiDAQmxServicer, m.name
            ):
                continue
            handler = _attribute_handler(self, m.name)
            if handler is None:
                handler = _not_supported(self, m.name, m.server_streaming)
            setattr(self, m.name, handler)

    # --- helpers ----------------------------------------------------------------------
    def _task(self, session: Session) -> SimTask:
        return self.device.task(session.name)

    def _unsupported(self, attribute: int, where: str) -> DaqmxError:
        return DaqmxError(ATTR_NOT_SUPPORTED, f"{where} attribute 0x{attribute:X}")

    # --- system and device ------------------------------------------------------------
    @_rpc
    def GetSystemInfoAttributeUInt32(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        versions = {0x1272: 0, 0x1923: 1, 0x2F22: 2}
        if attribute not in versions:
            raise self._unsupported(attribute, "system")
        return pb.GetSystemInfoAttributeUInt32Response(
            value=DRIVER_VERSION[versions[attribute]]
        )

    @_rpc
    def GetSystemInfoAttributeString(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        if attribute == 0x193B:  # device names
            value = self.device.spec.name
        elif attribute == 0x1273:  # task names
            value = ", ".join(self.device.tasks)
        else:
            raise self._unsupported(attribute, "system")
        return pb.GetSystemInfoAttributeStringResponse(value=value)

    @_rpc
    def GetErrorString(self, request, context):  # noqa: ANN001, ANN201
        return pb.GetErrorStringResponse(error_string=message_for(request.error_code))

    # --- task lifetime ----------------------------------------------------------------
    @_rpc
    def CreateTask(self, request, context):  # noqa: ANN001, ANN201
        task = self.device.create_task(request.session_name)
        return pb.CreateTaskResponse(
            task=Session(name=task.name), new_session_initialized=True
        )

    @_rpc
    def ClearTask(self, request, context):  # noqa: ANN001, ANN201
        self.device.clear_task(request.task.name)
        return pb.ClearTaskResponse()

    @_rpc
    def StartTask(self, request, context):  # noqa: ANN001, ANN201
        self.device.start_task(request.task.name)
        return pb.StartTaskResponse()

    @_rpc
    def StopTask(self, request, context):  # noqa: ANN001, ANN201
        self.device.stop_task(request.task.name)
        return pb.StopTaskResponse()

    @_rpc
    def TaskControl(self, request, context):  # noqa: ANN001, ANN201
        self._task(request.task)  # verify, commit, reserve: nothing more to do
        return pb.TaskControlResponse()

    @_rpc
    def IsTaskDone(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        with self.device.lock:
            done = self.device.is_done(task)
        return pb.IsTaskDoneResponse(is_task_done=done)

    @_rpc
    def WaitUntilTaskDone(self, request, context):  # noqa: ANN001, ANN201
        self.device.wait_until_done(request.task.name, request.time_to_wait)
        return pb.WaitUntilTaskDoneResponse()

    # --- channels ---------------------------------------------------------------------
    @_rpc
    def CreateAOVoltageChan(self, request, context):  # noqa: ANN001, ANN201
        self.device.add_ao_channels(
            self._task(request.task),
            request.physical_channel,
            request.name_to_assign_to_channel,
            request.min_val,
            request.max_val,
        )
        return pb.CreateAOVoltageChanResponse()

    @_rpc
    def CreateDOChan(self, request, context):  # noqa: ANN001, ANN201
        self.device.add_digital(
            self._task(request.task),
            "do",
            request.lines,
            request.name_to_assign_to_lines,
            _raw(request, "line_grouping"),
        )
        return pb.CreateDOChanResponse()

    @_rpc
    def CreateCOPulseChanFreq(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        before = len(task.channels)
        self.device.add_co_pulse_freq(
            task,
            request.counter,
            request.name_to_assign_to_channel,
            request.freq,
            request.duty_cycle,
        )
        self._co_timing(task.channels[before:], request, 10119)
        return pb.CreateCOPulseChanFreqResponse()

    def _co_timing(self, channels: list[Any], request: Any, output_type: int) -> None:
        """What a CO pulse channel keeps from its creation: output type,
        initial delay (s) and idle state."""
        idle = _raw(request, "idle_state") or LEVEL_LOW
        for ch in channels:
            ch.output_type = output_type
            ch.delay_s = float(request.initial_delay)
            ch.idle_state = idle

    @_rpc
    def CreateCOPulseChanTicks(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        before = len(task.channels)
        self.device.add_co_pulse_ticks(
            task,
            request.counter,
            request.name_to_assign_to_channel,
            request.source_terminal,
            idle_low=_raw(request, "idle_state") != LEVEL_HIGH,
            initial_delay=int(request.initial_delay),
            low_ticks=int(request.low_ticks),
            high_ticks=int(request.high_ticks),
        )
        for ch in task.channels[before:]:
            ch.output_type = 10268  # pulse ticks
        return pb.CreateCOPulseChanTicksResponse()

    # --- timing and triggers ----------------------------------------------------------
    @_rpc
    def CfgSampClkTiming(self, request, context):  # noqa: ANN001, ANN201
        mode = _raw(request, "sample_mode")
        if mode not in (FINITE, CONTINUOUS):
            raise DaqmxError(INVALID_ATTRIBUTE_VALUE, f"Sample mode: {mode}")
        self.device.configure_sample_clock(
            self._task(request.task),
            request.rate,
            request.source,
            mode == FINITE,
            int(request.samps_per_chan),
        )
        return pb.CfgSampClkTimingResponse()

    @_rpc
    def CfgImplicitTiming(self, request, context):  # noqa: ANN001, ANN201
        mode = _raw(request, "sample_mode")
        self.device.configure_implicit(
            self._task(request.task), mode == FINITE, int(request.samps_per_chan)
        )
        return pb.CfgImplicitTimingResponse()

    @_rpc
    def CfgDigEdgeStartTrig(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        self.device.configure_start_trigger(task, request.trigger_source)
        task.start_edge = _raw(request, "trigger_edge") or RISING
        return pb.CfgDigEdgeStartTrigResponse()

    @_rpc
    def DisableStartTrig(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        with self.device.lock:
            task.trigger_source, task.retriggerable = None, False
        return pb.DisableStartTrigResponse()

    # --- write stream -----------------------------------------------------------------
    @_rpc
    def WriteAnalogF64(self, request, context):  # noqa: ANN001, ANN201
        data = self._layout(request, np.asarray(request.write_array, dtype=np.float64))
        n = self.device.write(self._task(request.task), data, request.auto_start)
        return pb.WriteAnalogF64Response(samps_per_chan_written=n)

    @_rpc
    def WriteAnalogWaveforms(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        data = waveforms.analog_rows(task, request.waveforms)
        n = self.device.write(task, data, request.auto_start)
        return pb.WriteAnalogWaveformsResponse(samps_per_chan_written=n)

    @_rpc
    def WriteDigitalWaveforms(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        data = waveforms.digital_rows(task, request.waveforms)
        n = self.device.write(task, data, request.auto_start)
        return pb.WriteDigitalWaveformsResponse(samps_per_chan_written=n)

    def _write_binary(self, request: Any, response: Any) -> Any:
        """Unscaled AO writes: DAC codes, +/-32767 at the DAC's +/-10 V."""
        task = self._task(request.task)
        if task.kind != "ao":
            raise DaqmxError(
                ATTR_NOT_SUPPORTED, "Binary writes need an analog output task."
            )
        codes = self._layout(request, np.asarray(request.write_array, np.float64))
        volts = codes * (AO_RANGE_V / 32767.0)
        n = self.device.write(task, volts, request.auto_start)
        return response(samps_per_chan_written=n)

    @_rpc
    def WriteRaw(self, request, context):  # noqa: ANN001, ANN201
        """Raw AO writes: the DAC's int16 codes, channels interleaved."""
        task = self._task(request.task)
        if task.kind != "ao":
            raise DaqmxError(
                ATTR_NOT_SUPPORTED, "Raw writes need an analog output task."
            )
        n, n_chan = int(request.num_samps), max(len(task.channels), 1)
        codes = np.frombuffer(request.write_array, dtype="<i2")
        if n < 1 or codes.size < n * n_chan:
            raise DaqmxError(
                INVALID_NUM_SAMPS_TO_WRITE,
                f"{codes.size} values for {n} samples x {n_chan} channels "
                f"(Task Name: {task.name})",
            )
        rows = codes[: n * n_chan].astype(np.float64).reshape(n, n_chan).T
        written = self.device.write(
            task, rows * (AO_RANGE_V / 32767.0), request.auto_start
        )
        return pb.WriteRawResponse(samps_per_chan_written=written)

    @_rpc
    def WriteBinaryI16(self, request, context):  # noqa: ANN001, ANN201
        return self._write_binary(request, pb.WriteBinaryI16Response)

    @_rpc
    def WriteBinaryU16(self, request, context):  # noqa: ANN001, ANN201
        return self._write_binary(request, pb.WriteBinaryU16Response)

    @_rpc
    def WriteBinaryI32(self, request, context):  # noqa: ANN001, ANN201
        return self._write_binary(request, pb.WriteBinaryI32Response)

    @_rpc
    def WriteBinaryU32(self, request, context):  # noqa: ANN001, ANN201
        return self._write_binary(request, pb.WriteBinaryU32Response)

    @_rpc
    def WriteAnalogScalarF64(self, request, context):  # noqa: ANN001, ANN201
        data = np.array([[request.value]], dtype=np.float64)
        self.device.write(self._task(request.task), data, request.auto_start)
        return pb.WriteAnalogScalarF64Response()

    @_rpc
    def WriteDigitalLines(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        width = max((len(c.lines) for c in task.channels), default=1)
        raw = np.frombuffer(request.write_array, dtype=np.uint8)
        n, n_chan = int(request.num_samps_per_chan), len(task.channels)
        if n < 1 or raw.size != n * n_chan * width:
            raise DaqmxError(
                INVALID_NUM_SAMPS_TO_WRITE,
                f"{raw.size} values for {n} samples x {n_chan} channels x {width} "
                "lines",
            )
        if _raw(request, "data_layout") == GROUP_BY_CHANNEL:
            cube = raw.reshape(n_chan, n, width)
        else:
            cube = raw.reshape(n, n_chan, width).transpose(1, 0, 2)
        rows = [
            cube[i, :, k] > 0
            for i, c in enumerate(task.channels)
            for k in range(len(c.lines))
        ]
        data = np.array(rows, dtype=np.float64)
        n = self.device.write(self._task(request.task), data, request.auto_start)
        return pb.WriteDigitalLinesResponse(samps_per_chan_written=n)

    def _layout(self, request: Any, flat: np.ndarray) -> np.ndarray:
        """Channels x samples from the flat array the client sent."""
        task = self._task(request.task)
        n_chan = max(len(task.channels), 1)
        n = int(request.num_samps_per_chan)
        if n < 1 or flat.size != n * n_chan:
            raise DaqmxError(
                INVALID_NUM_SAMPS_TO_WRITE,
                f"{flat.size} values for {n} samples x {n_chan} channels "
                f"(Task Name: {task.name})",
            )
        if _raw(request, "data_layout") == GROUP_BY_CHANNEL:
            return flat.reshape(n_chan, n)
        return flat.reshape(n, n_chan).T

    # --- task attributes --------------------------------------------------------------
    @_rpc
    def GetTaskAttributeString(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        task = self._task(request.task)
        if attribute == 0x1276:
            value = task.name
        elif attribute == 0x1273:
            value = task.channel_names()
        elif attribute == 0x230E:
            value = self.device.spec.name
        else:
            raise self._unsupported(attribute, "task")
        return pb.GetTaskAttributeStringResponse(value=value)

    @_rpc
    def GetTaskAttributeUInt32(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        if attribute != 0x2181:
            raise self._unsupported(attribute, "task")
        return pb.GetTaskAttributeUInt32Response(
            value=len(self._task(request.task).channels)
        )

    @_rpc
    def GetTaskAttributeBool(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        if attribute != 0x1274:  # task complete
            raise self._unsupported(attribute, "task")
        task = self._task(request.task)
        with self.device.lock:
            done = self.device.is_done(task)
        return pb.GetTaskAttributeBoolResponse(value=done)

    def channels(self, task: SimTask, name: str) -> list[Any]:
        """Channels named (virtual or physical names); '' means all of them."""
        if not name.strip():
            if not task.channels:
                raise DaqmxError(INVALID_CHANNEL, f"Task Name: {task.name}")
            return list(task.channels)
        whole = name.strip().lstrip("/").lower()
        exact = [
            c
            for c in task.channels
            if c.name.lower() == whole or c.physical.lower() == whole
        ]
        if exact:
            return exact
        chans = []
        for part in expand_channels(name):
            low = part.lower()
            found = [
                c
                for c in task.channels
                if c.name.lower() == low or c.physical.lower() == low
            ]
            if not found:
                raise DaqmxError(PHYS_CHAN_DEV_NOT_IN_TASK, f"Channel Name: {part}")
            chans += found
        return chans

    # --- device --------------------------------------------------------------
    def device_value(self, attribute: int) -> Any:
        """A device attribute's value (tables in device.py)."""
        spec = self.device.spec
        lists = device_string_lists(spec)
        if attribute in lists:
            return ", ".join(lists[attribute])
        if attribute == 0x0631:
            return spec.product_type
        if attribute in DEVICE_SCALARS:
            return DEVICE_SCALARS[attribute]
        if attribute in DEVICE_ARRAYS:
            return DEVICE_ARRAYS[attribute]
        raise self._unsupported(attribute, "device")

    def physical_value(self, channel: str, attribute: int) -> Any:
        """A physical channel attribute (port widths, AI terminal configs)."""
        spec = self.device.spec
        name = channel.strip().lstrip("/")
        ports = {
            p.lower(): n for p, n in zip(spec.do_ports(), spec.port_lines, strict=True)
        }
        if attribute == 0x29A7 and name.lower() in ports:  # DO port width
            return ports[name.lower()]
        if attribute == 0x29A4 and name.lower() in ports:  # DI port width
            return ports[name.lower()]
        if attribute == 0x2342 and name in spec.ai_channels():  # AI terminal configs
            return 1 | 2 | 4  # RSE, NRSE, differential (bit field)
        if attribute == 0x2FD7 and name in spec.ai_channels():
            return [10322]
        if attribute == 0x29A6 and name.lower() in {x.lower() for x in spec.do_lines()}:
            return name.lower().startswith(f"{spec.name.lower()}/port0")
        if attribute in (0x22DC, 0x22DD):  # AI/AO term config placeholders
            raise self._unsupported(attribute, "physical channel")
        raise self._unsupported(attribute, "physical channel")

    @_rpc
    def SelfTestDevice(self, request, context):  # noqa: ANN001, ANN201
        check_device(self.device.spec, request.device_name)
        return pb.SelfTestDeviceResponse()

    @_rpc
    def SelfCal(self, request, context):  # noqa: ANN001, ANN201
        check_device(self.device.spec, request.device_name)
        return pb.SelfCalResponse()

    @_rpc
    def DeviceSupportsCal(self, request, context):  # noqa: ANN001, ANN201
        check_device(self.device.spec, request.device_name)
        return pb.DeviceSupportsCalResponse(cal_supported=True)

    def _cal_date(self, request: Any, response: Any) -> Any:
        check_device(self.device.spec, request.device_name)
        y, mo, d, h, mi = CAL_DATE
        return response(year=y, month=mo, day=d, hour=h, minute=mi)

    @_rpc
    def GetExtCalLastDateAndTime(self, request, context):  # noqa: ANN001, ANN201
        return self._cal_date(request, pb.GetExtCalLastDateAndTimeResponse)

    @_rpc
    def GetSelfCalLastDateAndTime(self, request, context):  # noqa: ANN001, ANN201
        return self._cal_date(request, pb.GetSelfCalLastDateAndTimeResponse)

    @_rpc
    def RestoreLastExtCalConst(self, request, context):  # noqa: ANN001, ANN201
        check_device(self.device.spec, request.device_name)
        return pb.RestoreLastExtCalConstResponse()

    @_rpc
    def ResetDevice(self, request, context):  # noqa: ANN001, ANN201
        check_device(self.device.spec, request.device_name)
        self.device.close()
        return pb.ResetDeviceResponse()

    # --- channels (AI, DI, CO time) ------------------------------------------
    @_rpc
    def CreateAIVoltageChan(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        before = len(task.channels)
        self.device.add_ai_voltage(
            task,
            request.physical_channel,
            request.name_to_assign_to_channel,
            request.min_val,
            request.max_val,
            _raw(request, "terminal_config"),
        )
        units = _raw(request, "units")
        for ch in task.channels[before:]:
            if units:
                ch.attrs[attributes.AI_VOLTAGE_UNITS] = units
            if request.custom_scale_name:
                ch.attrs[attributes.AI_CUSTOM_SCALE] = request.custom_scale_name
        return pb.CreateAIVoltageChanResponse()

    @_rpc
    def CreateAIVoltageChanWithExcit(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        before = len(task.channels)
        self.device.add_ai_voltage(
            task,
            request.physical_channel,
            request.name_to_assign_to_channel,
            request.min_val,
            request.max_val,
            _raw(request, "terminal_config"),
        )
        for ch in task.channels[before:]:
            ch.attrs.update(
                {
                    attributes.AI_MEAS_TYPE: attributes.VOLTAGE_WITH_EXCIT,
                    attributes.AI_EXCIT_SRC: _raw(request, "voltage_excit_source"),
                    attributes.AI_EXCIT_VAL: request.voltage_excit_val,
                    attributes.AI_EXCIT_USE_FOR_SCALING: request.use_excit_for_scaling,
                }
            )
        return pb.CreateAIVoltageChanWithExcitResponse()

    @_rpc
    def CreateDIChan(self, request, context):  # noqa: ANN001, ANN201
        self.device.add_digital(
            self._task(request.task),
            "di",
            request.lines,
            request.name_to_assign_to_lines,
            _raw(request, "line_grouping"),
        )
        return pb.CreateDIChanResponse()

    @_rpc
    def CreateCOPulseChanTime(self, request, context):  # noqa: ANN001, ANN201
        high, low = request.high_time, request.low_time
        if high <= 0 or low <= 0:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE, f"High time {high} s / low time {low} s"
            )
        task = self._task(request.task)
        before = len(task.channels)
        self.device.add_co_pulse_freq(
            task,
            request.counter,
            request.name_to_assign_to_channel,
            1.0 / (high + low),
            high / (high + low),
        )
        self._co_timing(task.channels[before:], request, 10269)
        return pb.CreateCOPulseChanTimeResponse()

    # --- events (server streams) ---------------------------------------------------
    def _events(
        self, context: grpc.ServicerContext, request: Any, key: tuple[str, int], n: int
    ) -> Iterator[int]:
        """Register an event, confirm with initial metadata (a refusal closes
        the stream first, as NI's server does) and stream what the card raises."""
        name = request.task.name
        self.device.calls.append(f"Register:{key[0]}")
        try:
            reg = self.device.register_event(name, key, n)
        except DaqmxError as exc:
            context.set_trailing_metadata((("ni-error", str(exc.code)),))
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        context.add_callback(reg.closed.set)
        context.send_initial_metadata(())
        try:
            yield from self.device.watch(name, reg)
        finally:
            reg.closed.set()
            with self.device.lock:
                task = self.device.tasks.get(name)
                if task is not None and task.events.get(key) is reg:
                    del task.events[key]

    def RegisterDoneEvent(self, request, context):  # noqa: ANN001, ANN201
        for status in self._events(context, request, ("done", 0), 0):
            yield pb.RegisterDoneEventResponse(status=status)

    def RegisterEveryNSamplesEvent(self, request, context):  # noqa: ANN001, ANN201
        which = _raw(request, "every_n_samples_event_type")
        for n in self._events(context, request, ("every_n", which), request.n_samples):
            yield pb.RegisterEveryNSamplesEventResponse(
                every_n_samples_event_type_raw=which, n_samples=n
            )

    def RegisterSignalEvent(self, request, context):  # noqa: ANN001, ANN201
        signal = _raw(request, "signal_id")
        for value in self._events(context, request, ("signal", signal), 0):
            yield pb.RegisterSignalEventResponse(signal_id=value)

    @_rpc
    def UnregisterDoneEvent(self, request, context):  # noqa: ANN001, ANN201
        self.device.unregister_event(request.task.name, ("done", 0))
        return pb.UnregisterDoneEventResponse()

    @_rpc
    def UnregisterEveryNSamplesEvent(self, request, context):  # noqa: ANN001, ANN201
        which = _raw(request, "every_n_samples_event_type")
        self.device.unregister_event(request.task.name, ("every_n", which))
        return pb.UnregisterEveryNSamplesEventResponse()

    @_rpc
    def UnregisterSignalEvent(self, request, context):  # noqa: ANN001, ANN201
        signal = _raw(request, "signal_id")
        self.device.unregister_event(request.task.name, ("signal", signal))
        return pb.UnregisterSignalEventResponse()

    # --- reads ------------------------------------------------------------------------
    def _read(self, request: Any) -> tuple[SimTask, np.ndarray]:
        task = self._task(request.task)
        n = (
            int(request.num_samps_per_chan)
            if hasattr(request, "num_samps_per_chan")
            else 1
        )
        if n > 2**31:
            n = -1
        data = self.device.read(task.name, n, float(request.timeout))
        return task, data

    def _group(self, request: Any, data: np.ndarray) -> np.ndarray:
        if _raw(request, "fill_mode") == GROUP_BY_CHANNEL:
            return data.reshape(-1)
        return data.T.reshape(-1)

    @_rpc
    def ReadAnalogF64(self, request, context):  # noqa: ANN001, ANN201
        _, data = self._read(request)
        size = int(request.array_size_in_samps)
        if data.size > size:
            raise DaqmxError(READ_BUFFER_TOO_SMALL, f"Array size: {size}")
        return pb.ReadAnalogF64Response(
            read_array=self._group(request, data).tolist(),
            samps_per_chan_read=data.shape[1],
        )

    @_rpc
    def ReadAnalogScalarF64(self, request, context):  # noqa: ANN001, ANN201
        _, data = self._read(request)
        return pb.ReadAnalogScalarF64Response(value=float(data[0, 0]))

    def _codes(self, request: Any) -> tuple[SimTask, np.ndarray]:
        task, data = self._read(request)
        if task.kind != "ai":
            raise DaqmxError(
                ATTR_NOT_SUPPORTED, "Binary reads need an analog input task."
            )
        return task, ai_codes(task, data)

    def _read_binary(self, request: Any, response: Any, dtype: Any) -> Any:
        _, codes = self._codes(request)
        size = int(request.array_size_in_samps)
        if codes.size > size:
            raise DaqmxError(READ_BUFFER_TOO_SMALL, f"Array size: {size}")
        return response(
            read_array=self._group(request, codes.astype(dtype)).tolist(),
            samps_per_chan_read=codes.shape[1],
        )

    @_rpc
    def ReadBinaryI16(self, request, context):  # noqa: ANN001, ANN201
        return self._read_binary(request, pb.ReadBinaryI16Response, np.int16)

    @_rpc
    def ReadBinaryU16(self, request, context):  # noqa: ANN001, ANN201
        return self._read_binary(request, pb.ReadBinaryU16Response, np.uint16)

    @_rpc
    def ReadBinaryI32(self, request, context):  # noqa: ANN001, ANN201
        return self._read_binary(request, pb.ReadBinaryI32Response, np.int32)

    @_rpc
    def ReadBinaryU32(self, request, context):  # noqa: ANN001, ANN201
        return self._read_binary(request, pb.ReadBinaryU32Response, np.uint32)

    @_rpc
    def ReadRaw(self, request, context):  # noqa: ANN001, ANN201
        _, codes = self._codes(request)
        raw = codes.T.reshape(-1).tobytes()  # interleaved, as the ADC delivers
        size = int(request.array_size_in_bytes)
        if len(raw) > size:
            raise DaqmxError(READ_BUFFER_TOO_SMALL, f"Array size: {size}")
        return pb.ReadRawResponse(
            read_array=raw, samps_read=codes.shape[1], num_bytes_per_samp=2
        )

    def _read_waveforms(self, request: Any, make: Callable, response: Any) -> Any:
        task = self._task(request.task)
        first = task.read_pos
        task, data = self._read(request)
        t0 = self.device.sample_time(task.name, first)
        mode = _raw(request, "waveform_attribute_mode")
        return response(
            waveforms=make(task, data, t0, mode), samps_per_chan_read=data.shape[1]
        )

    @_rpc
    def ReadAnalogWaveforms(self, request, context):  # noqa: ANN001, ANN201
        return self._read_waveforms(
            request, waveforms.analog, pb.ReadAnalogWaveformsResponse
        )

    @_rpc
    def ReadDigitalWaveforms(self, request, context):  # noqa: ANN001, ANN201
        return self._read_waveforms(
            request, waveforms.digital, pb.ReadDigitalWaveformsResponse
        )

    def _ports(self, task: SimTask, lines: np.ndarray) -> np.ndarray:
        """Per-line rows -> one integer row per channel (bit k: k-th line)."""
        out, row = [], 0
        for ch in task.channels:
            n = len(ch.lines)
            bits = lines[row : row + n].astype(np.uint64)
            weights = (np.uint64(1) << np.arange(n, dtype=np.uint64))[:, None]
            out.append((bits * weights).sum(axis=0))
            row += n
        return np.array(out, dtype=np.uint64)

    def _read_port(self, request: Any, response: Any) -> Any:
        task, data = self._read(request)
        ports = self._ports(task, data)
        size = int(request.array_size_in_samps)
        if ports.size > size:
            raise DaqmxError(READ_BUFFER_TOO_SMALL, f"Array size: {size}")
        return response(
            read_array=self._group(request, ports).astype(np.uint32).tolist(),
            samps_per_chan_read=ports.shape[1],
        )

    @_rpc
    def ReadDigitalU32(self, request, context):  # noqa: ANN001, ANN201
        return self._read_port(request, pb.ReadDigitalU32Response)

    @_rpc
    def ReadDigitalU16(self, request, context):  # noqa: ANN001, ANN201
        return self._read_port(request, pb.ReadDigitalU16Response)

    @_rpc
    def ReadDigitalU8(self, request, context):  # noqa: ANN001, ANN201
        task, data = self._read(request)
        ports = self._ports(task, data)
        raw = self._group(request, ports).astype(np.uint8).tobytes()
        return pb.ReadDigitalU8Response(
            read_array=raw, samps_per_chan_read=ports.shape[1]
        )

    @_rpc
    def ReadDigitalScalarU32(self, request, context):  # noqa: ANN001, ANN201
        task, data = self._read(request)
        return pb.ReadDigitalScalarU32Response(value=int(self._ports(task, data)[0, 0]))

    @_rpc
    def ReadDigitalLines(self, request, context):  # noqa: ANN001, ANN201
        task, data = self._read(request)
        width = max(len(c.lines) for c in task.channels)
        n = data.shape[1]
        out = np.zeros((len(task.channels), n, width), dtype=np.uint8)
        row = 0
        for i, ch in enumerate(task.channels):
            k = len(ch.lines)
            out[i, :, :k] = data[row : row + k].T
            row += k
        if _raw(request, "fill_mode") != GROUP_BY_CHANNEL:
            out = out.transpose(1, 0, 2)
        raw = out.reshape(-1).tobytes()
        if len(raw) > int(request.array_size_in_bytes):
            raise DaqmxError(
                READ_BUFFER_TOO_SMALL, f"Array size: {request.array_size_in_bytes}"
            )
        return pb.ReadDigitalLinesResponse(
            read_array=raw, samps_per_chan_read=n, num_bytes_per_samp=width
        )

    # --- digital port writes ----------------------------------------------------------
    def _write_ports(self, request: Any, values: np.ndarray) -> int:
        task = self._task(request.task)
        n_chan = max(len(task.channels), 1)
        n = int(request.num_samps_per_chan)
        if n < 1 or values.size != n * n_chan:
            raise DaqmxError(
                INVALID_NUM_SAMPS_TO_WRITE,
                f"{values.size} values for {n} samples x {n_chan} channels",
            )
        if _raw(request, "data_layout") == GROUP_BY_CHANNEL:
            per_chan = values.reshape(n_chan, n)
        else:
            per_chan = values.reshape(n, n_chan).T
        rows = []
        for ch, row in zip(task.channels, per_chan, strict=True):
            for k in range(len(ch.lines)):
                rows.append((row.astype(np.uint64) >> np.uint64(k)) & np.uint64(1))
        data = np.array(rows, dtype=np.float64)
        return self.device.write(task, data, request.auto_start)

    @_rpc
    def WriteDigitalU32(self, request, context):  # noqa: ANN001, ANN201
        n = self._write_ports(request, np.asarray(request.write_array, dtype=np.uint64))
        return pb.WriteDigitalU32Response(samps_per_chan_written=n)

    @_rpc
    def WriteDigitalU16(self, request, context):  # noqa: ANN001, ANN201
        n = self._write_ports(request, np.asarray(request.write_array, dtype=np.uint64))
        return pb.WriteDigitalU16Response(samps_per_chan_written=n)

    @_rpc
    def WriteDigitalU8(self, request, context):  # noqa: ANN001, ANN201
        raw = np.frombuffer(request.write_array, dtype=np.uint8).astype(np.uint64)
        n = self._write_ports(request, raw)
        return pb.WriteDigitalU8Response(samps_per_chan_written=n)

    @_rpc
    def WriteDigitalScalarU32(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        rows = [
            float((int(request.value) >> k) & 1)
            for ch in task.channels
            for k in range(len(ch.lines))
        ]
        self.device.write(task, np.array(rows)[:, None], request.auto_start)
        return pb.WriteDigitalScalarU32Response()


_ATTR = re.compile(
    r"^(Get|Set|Reset)(Chan|Timing|Trig|Read|Write|Buffer|ExportedSignal|Device|"
    r"PhysicalChan|CalInfo)Attribute(Bool|Double|Int32|UInt32|UInt64|String|"
    r"DoubleArray|Int32Array|UInt32Array)?$"
)
_GROUP = {
    "Chan": "chan",
    "Timing": "timing",
    "Trig": "trig",
    "Read": "read",
    "Write": "write",
    "Buffer": "buffer",
    "ExportedSignal": "exported_signal",
}


def _attribute_handler(servicer: SimDaqServicer, name: str) -> Callable | None:
    """A generic handler for an attribute RPC (tables in attributes.py)."""
    m = _ATTR.match(name)
    if m is None:
        return None
    verb, group, type_ = m.groups()
    response = getattr(pb, f"{name}Response")
    device = servicer.device

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        device.calls.append(name)
        try:
            attribute = _raw(request, "attribute")
            if group == "Device":
                check_device(device.spec, request.device_name)
                return _respond(response, type_, servicer.device_value(attribute))
            if group == "CalInfo":
                check_device(device.spec, request.device_name)
                if verb == "Get":
                    value = attributes.get("cal", device.cal_info, attribute)
                    return _respond(response, type_, value)
                with device.lock:
                    attributes.set_("cal", device.cal_info, attribute, _value(request))
                return response()
            if group == "PhysicalChan":
                value = servicer.physical_value(request.physical_channel, attribute)
                return _respond(response, type_, value)
            task = servicer._task(request.task)
            with device.lock:
                device.refresh(task)
                if group == "Chan":
                    chans = servicer.channels(task, request.channel)
                    if verb == "Get":
                        values = [
                            attributes.get("chan", c, attribute, c.kind) for c in chans
                        ]
                        if len(set(map(str, values))) > 1:
                            raise DaqmxError(
                                INVALID_ATTRIBUTE_VALUE,
                                "The channels have different values for the property",
                            )
                        return _respond(response, type_, values[0])
                    for c in chans:
                        if verb == "Set":
                            attributes.set_(
                                "chan", c, attribute, _value(request), c.kind
                            )
                        else:
                            attributes.reset("chan", c, attribute, c.kind)
                    return response()
                grp = _GROUP[group]
                if verb == "Get":
                    return _respond(
                        response, type_, attributes.get(grp, task, attribute)
                    )
                if verb == "Set":
                    attributes.set_(grp, task, attribute, _value(request))
                else:
                    attributes.reset(grp, task, attribute)
                return response()
        except DaqmxError as exc:
            context.set_trailing_metadata((("ni-error", str(exc.code)),))
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))

    return handler


def _value(request: Any) -> Any:
    raw = getattr(request, "value_raw", 0)
    return raw if raw else request.value


def _respond(response: Any, type_: str | None, value: Any) -> Any:
    if type_ in ("Int32", "Int32Array"):
        return response(value_raw=value)
    if value is None:
        value = "" if type_ == "String" else 0
    return response(value=value)


def _not_supported(servicer: SimDaqServicer, name: str, streaming: bool) -> Callable:
    """A call the X-series cannot do answers DAQmx's error, as the driver would."""

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        servicer.device.calls.append(name)
        context.set_trailing_metadata(
            (("ni-error", str(FUNCTION_NOT_SUPPORTED_FOR_DEVICE_TASKS)),)
        )
        context.abort(
            grpc.StatusCode.UNKNOWN,
            f"{message_for(FUNCTION_NOT_SUPPORTED_FOR_DEVICE_TASKS)}\nFunction: {name}",
        )

    return handler


class SimDaqServer:
    """The simulated card on a gRPC port (127.0.0.1, ephemeral by default)."""

    def __init__(
        self, device: SimDaqDevice, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.device = device
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="simdaq"),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),  # a port in use is an error, not shared
            ],
        )
        pb_grpc.add_NiDAQmxServicer_to_server(SimDaqServicer(device), self._server)
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        self.address = f"{host}:{self.port}"

    def start(self) -> SimDaqServer:
        """Serve in the background."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and stop every task."""
        self._server.stop(grace=0.5).wait(2.0)
        self.device.close()

    def wait(self) -> None:
        """Block until the server stops (standalone `mmapp sim-daq`)."""
        self._server.wait_for_termination()
