"""The simulated card served over gRPC with the service `nidaqmx` itself ships.

The real `nidaqmx` client connects with ``GrpcSessionOptions`` exactly as it
would to NI's gRPC device server; errors travel as the real DAQmx status codes
(trailing metadata ``ni-error``), so client code sees ``nidaqmx.DaqError`` with
the driver's code.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import numpy as np
from nidaqmx._stubs import nidaqmx_pb2 as pb
from nidaqmx._stubs import nidaqmx_pb2_grpc as pb_grpc
from session_pb2 import Session

from mmapp.sim.daq_device import SimDaqDevice, SimTask, expand_channels
from mmapp.sim.daq_errors import (
    ATTR_NOT_SUPPORTED,
    DEVICE_NOT_FOUND,
    INVALID_ATTRIBUTE_VALUE,
    INVALID_NUM_SAMPS_TO_WRITE,
    PHYS_CHAN_DEV_NOT_IN_TASK,
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

    # --- helpers ----------------------------------------------------------------------
    def _task(self, session: Session) -> SimTask:
        return self.device.task(session.name)

    def _unsupported(self, attribute: int, where: str) -> DaqmxError:
        return DaqmxError(ATTR_NOT_SUPPORTED, f"{where} attribute 0x{attribute:X}")

    def _check_device(self, name: str) -> None:
        if name != self.device.spec.name:
            raise DaqmxError(DEVICE_NOT_FOUND, f"Device Specified: {name}")

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
    def GetDeviceAttributeString(self, request, context):  # noqa: ANN001, ANN201
        self._check_device(request.device_name)
        spec = self.device.spec
        lists: dict[int, Callable[[], list[str]]] = {
            0x231F: spec.ao_channels,
            0x231E: spec.ai_channels,
            0x2322: spec.do_lines,
            0x2320: spec.do_lines,
            0x2323: spec.do_ports,
            0x2321: spec.do_ports,
            0x2324: spec.counter_channels,
            0x2325: spec.counter_channels,
            0x2A40: spec.terminals,
        }
        attribute = _raw(request, "attribute")
        if attribute == 0x0631:
            value = spec.product_type
        elif attribute in lists:
            value = ", ".join(lists[attribute]())
        else:
            raise self._unsupported(attribute, "device")
        return pb.GetDeviceAttributeStringResponse(value=value)

    @_rpc
    def GetDeviceAttributeBool(self, request, context):  # noqa: ANN001, ANN201
        self._check_device(request.device_name)
        attribute = _raw(request, "attribute")
        if attribute != 0x22CA:  # is simulated
            raise self._unsupported(attribute, "device")
        return pb.GetDeviceAttributeBoolResponse(value=True)

    @_rpc
    def GetDeviceAttributeInt32(self, request, context):  # noqa: ANN001, ANN201
        self._check_device(request.device_name)
        attribute = _raw(request, "attribute")
        values = {0x29A9: X_SERIES_DAQ, 0x2326: BUS_PCIE}
        if attribute not in values:
            raise self._unsupported(attribute, "device")
        return pb.GetDeviceAttributeInt32Response(value_raw=values[attribute])

    @_rpc
    def GetDeviceAttributeUInt32(self, request, context):  # noqa: ANN001, ANN201
        self._check_device(request.device_name)
        attribute = _raw(request, "attribute")
        values = {0x0632: 0x1D0C0DE, 0x231D: 0x7435}  # serial, product number
        if attribute not in values:
            raise self._unsupported(attribute, "device")
        return pb.GetDeviceAttributeUInt32Response(value=values[attribute])

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
        if _raw(request, "line_grouping") != 0:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE,
                "this simulation takes one channel per line (LineGrouping."
                "CHAN_PER_LINE)",
            )
        self.device.add_do_lines(
            self._task(request.task), request.lines, request.name_to_assign_to_lines
        )
        return pb.CreateDOChanResponse()

    @_rpc
    def CreateCOPulseChanFreq(self, request, context):  # noqa: ANN001, ANN201
        self.device.add_co_pulse_freq(
            self._task(request.task),
            request.counter,
            request.name_to_assign_to_channel,
            request.freq,
            request.duty_cycle,
        )
        return pb.CreateCOPulseChanFreqResponse()

    @_rpc
    def CreateCOPulseChanTicks(self, request, context):  # noqa: ANN001, ANN201
        self.device.add_co_pulse_ticks(
            self._task(request.task),
            request.counter,
            request.name_to_assign_to_channel,
            request.source_terminal,
            idle_low=_raw(request, "idle_state") != LEVEL_HIGH,
            initial_delay=int(request.initial_delay),
            low_ticks=int(request.low_ticks),
            high_ticks=int(request.high_ticks),
        )
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
        if _raw(request, "trigger_edge") != RISING:
            raise DaqmxError(
                INVALID_ATTRIBUTE_VALUE, "this simulation triggers on rising edges"
            )
        self.device.configure_start_trigger(
            self._task(request.task), request.trigger_source
        )
        return pb.CfgDigEdgeStartTrigResponse()

    @_rpc
    def DisableStartTrig(self, request, context):  # noqa: ANN001, ANN201
        task = self._task(request.task)
        with self.device.lock:
            task.trigger_source, task.retriggerable = None, False
        return pb.DisableStartTrigResponse()

    @_rpc
    def SetTrigAttributeBool(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        if attribute != 0x190F:  # retriggerable
            raise self._unsupported(attribute, "trigger")
        task = self._task(request.task)
        with self.device.lock:
            task.retriggerable = bool(request.value)
        return pb.SetTrigAttributeBoolResponse()

    @_rpc
    def GetTrigAttributeBool(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        if attribute != 0x190F:
            raise self._unsupported(attribute, "trigger")
        return pb.GetTrigAttributeBoolResponse(
            value=self._task(request.task).retriggerable
        )

    # --- write stream -----------------------------------------------------------------
    @_rpc
    def SetWriteAttributeInt32(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        if attribute != 0x1453:  # regeneration mode
            raise self._unsupported(attribute, "write")
        value = int(request.value_raw or request.value)
        if value not in (ALLOW_REGENERATION, DONT_ALLOW_REGENERATION):
            raise DaqmxError(INVALID_ATTRIBUTE_VALUE, f"Regeneration mode: {value}")
        task = self._task(request.task)
        with self.device.lock:
            task.regenerate = value == ALLOW_REGENERATION
        return pb.SetWriteAttributeInt32Response()

    @_rpc
    def GetWriteAttributeInt32(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        if attribute != 0x1453:
            raise self._unsupported(attribute, "write")
        task = self._task(request.task)
        value = ALLOW_REGENERATION if task.regenerate else DONT_ALLOW_REGENERATION
        return pb.GetWriteAttributeInt32Response(value_raw=value)

    @_rpc
    def GetWriteAttributeUInt64(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        task = self._task(request.task)
        if attribute == 0x192B:  # total samples per channel generated
            value = self.device.generated(task.name)
        elif attribute == 0x1458:  # current write position
            value = task.buffer_len()
        else:
            raise self._unsupported(attribute, "write")
        return pb.GetWriteAttributeUInt64Response(value=value)

    @_rpc
    def GetWriteAttributeUInt32(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        task = self._task(request.task)
        if attribute == 0x1460:  # space available in the buffer
            value = 0 if task.buffers else task.samps_per_chan
        elif attribute == 0x186C:  # buffer size
            value = task.buffer_len()
        elif attribute == 0x217F:  # booleans per channel (one line per channel)
            value = 1
        else:
            raise self._unsupported(attribute, "write")
        return pb.GetWriteAttributeUInt32Response(value=value)

    @_rpc
    def WriteAnalogF64(self, request, context):  # noqa: ANN001, ANN201
        data = self._layout(request, np.asarray(request.write_array, dtype=np.float64))
        n = self.device.write(self._task(request.task), data, request.auto_start)
        return pb.WriteAnalogF64Response(samps_per_chan_written=n)

    @_rpc
    def WriteAnalogScalarF64(self, request, context):  # noqa: ANN001, ANN201
        data = np.array([[request.value]], dtype=np.float64)
        self.device.write(self._task(request.task), data, request.auto_start)
        return pb.WriteAnalogScalarF64Response()

    @_rpc
    def WriteDigitalLines(self, request, context):  # noqa: ANN001, ANN201
        raw = np.frombuffer(request.write_array, dtype=np.uint8).astype(np.float64)
        data = self._layout(request, (raw > 0).astype(np.float64))
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

    # --- task and channel attributes --------------------------------------------------
    @_rpc
    def GetTaskAttributeString(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        task = self._task(request.task)
        if attribute == 0x1276:
            value = task.name
        elif attribute == 0x1273:
            value = ", ".join(c.name for c in task.channels)
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

    def _channel(self, task: SimTask, name: str) -> Any:
        names = set(expand_channels(name))
        chans = [c for c in task.channels if c.name in names or c.physical in names]
        if not chans:
            raise DaqmxError(PHYS_CHAN_DEV_NOT_IN_TASK, f"Channel Name: {name}")
        return chans

    @_rpc
    def GetChanAttributeInt32(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        chans = self._channel(self._task(request.task), request.channel)
        if attribute == 0x187F:  # channel type
            value = CHAN_TYPE[chans[0].kind]
        elif attribute == 0x1170 and chans[0].kind == "co":  # pulse idle state
            value = LEVEL_LOW
        else:
            raise self._unsupported(attribute, "channel")
        return pb.GetChanAttributeInt32Response(value_raw=value)

    @_rpc
    def GetChanAttributeUInt32(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        ch = self._channel(self._task(request.task), request.channel)[0]
        values = {  # counter pulse ticks: high, low, initial delay
            0x1169: ch.high_ticks,
            0x1171: ch.low_ticks,
            0x0298: ch.initial_delay,
        }
        if attribute not in values or not ch.counts_ticks:
            raise self._unsupported(attribute, "channel")
        return pb.GetChanAttributeUInt32Response(value=values[attribute])

    @_rpc
    def GetChanAttributeString(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        chans = self._channel(self._task(request.task), request.channel)
        if attribute == 0x18F5:  # physical channel
            value = ", ".join(c.physical for c in chans)
        elif attribute == 0x0339 and chans[0].counts_ticks:  # counter timebase
            value = chans[0].source
        elif attribute == 0x18E1 and chans[0].kind == "co":  # pulse output terminal
            value = f"/{chans[0].physical.replace('ctr', 'Ctr')}InternalOutput"
        else:
            raise self._unsupported(attribute, "channel")
        return pb.GetChanAttributeStringResponse(value=value)

    @_rpc
    def GetChanAttributeDouble(self, request, context):  # noqa: ANN001, ANN201
        attribute = _raw(request, "attribute")
        chans = self._channel(self._task(request.task), request.channel)
        values = {0x1137: chans[0].max_v, 0x1187: chans[0].min_v}
        if attribute not in values:
            raise self._unsupported(attribute, "channel")
        return pb.GetChanAttributeDoubleResponse(value=values[attribute])


class SimDaqServer:
    """The simulated card on a gRPC port (127.0.0.1, ephemeral by default)."""

    def __init__(
        self, device: SimDaqDevice, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.device = device
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="simdaq"),
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
