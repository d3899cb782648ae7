"""DAQmx status codes the simulated card raises (the real driver's numbers)."""

from __future__ import annotations

PHYSICAL_CHAN_DOES_NOT_EXIST = -200170
INVALID_ATTRIBUTE_VALUE = -200077
INVALID_AO_DATA_WRITE = -200561
CAN_NOT_PERFORM_OP_WHEN_NO_CHANS_IN_TASK = -200478
OUTPUT_BUFFER_EMPTY = -200462
SAMP_RATE_TOO_HIGH = -200332
SAMP_RATE_TOO_LOW = -200331
DUPLICATE_TASK = -200089
INVALID_TASK = -200088
ATTR_NOT_SUPPORTED = -200197
ROUTE_NOT_SUPPORTED_BY_HW = -200368
WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE = -200560
INVALID_NUM_SAMPS_TO_WRITE = -200622
WRITE_BUFFER_TOO_SMALL = -200234
PHYS_CHAN_DEV_NOT_IN_TASK = -200648
DEVICE_NOT_FOUND = -200220
RESOURCE_RESERVED = -50103
INVALID_ROUTING_SOURCE_TERMINAL_NAME = -89120
INVALID_ROUTING_DESTINATION_TERMINAL_NAME = -89121
ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT = -200452
INVALID_PHYS_CHAN_TYPE = -200430
SAMPLES_NOT_YET_AVAILABLE = -200284
WRITE_NUM_CHANS_MISMATCH = -200524
READ_BUFFER_TOO_SMALL = -200229
NUM_LINES_MISMATCH_IN_READ_OR_WRITE = -200463
INVALID_CHANNEL = -200087  # no such virtual channel in the task
CHAN_ALREADY_IN_TASK = -200489
FUNCTION_NOT_SUPPORTED_FOR_DEVICE_TASKS = -200092
TRIG_WHEN_ON_DEMAND_SAMP_TIMING = -200262
DIGITAL_OUTPUT_NOT_SUPPORTED = -200012
DONE_EVENT_ALREADY_REGISTERED = -200950
EVERY_N_SAMPS_EVENT_ALREADY_REGISTERED = -200966
EVERY_N_SAMPS_TRANSFERRED_EVENT_ALREADY_REGISTERED = -200967
INVALID_RANGE_OF_OBJECTS_SYNTAX_IN_STRING = -200498
SIGNAL_EVENT_ALREADY_REGISTERED = -200949
EVERY_N_SAMPS_ACQ_EVENT_NOT_SUPPORTED = -200981  # output tasks
EVERY_N_SAMPS_TRANSFERRED_EVENT_NOT_SUPPORTED = -200980  # input tasks
CANNOT_WRITE_WHEN_AUTO_START_FALSE_AND_TASK_NOT_RUNNING = -200846
SAMPLES_CAN_NOT_YET_BE_WRITTEN = -200292
NO_MORE_SPACE = -200293
OPERATION_TIMED_OUT = -200474

MESSAGES = {
    PHYSICAL_CHAN_DOES_NOT_EXIST: "Physical channel specified does not exist on "
    "this device.",
    INVALID_ATTRIBUTE_VALUE: "Requested value is not a supported value for this "
    "property.",
    INVALID_AO_DATA_WRITE: "Attempted writing analog data that is too large or too "
    "small.",
    CAN_NOT_PERFORM_OP_WHEN_NO_CHANS_IN_TASK: "Specified operation cannot be "
    "performed when there are no channels in the task.",
    OUTPUT_BUFFER_EMPTY: "Cannot start generation: no data has been written to the "
    "output buffer.",
    SAMP_RATE_TOO_HIGH: "Specified sample rate is higher than the fastest rate "
    "supported by the device.",
    SAMP_RATE_TOO_LOW: "Specified sample rate is lower than the slowest rate "
    "supported by the device.",
    DUPLICATE_TASK: "Task with the same name already exists.",
    INVALID_TASK: "Task specified is invalid or does not exist.",
    ATTR_NOT_SUPPORTED: "Specified property is not supported by the device or is "
    "not applicable to the task.",
    ROUTE_NOT_SUPPORTED_BY_HW: "Requested route is not supported by this device.",
    WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE: "Wait Until Done did not indicate all "
    "samples were generated within the timeout.",
    INVALID_NUM_SAMPS_TO_WRITE: "Number of samples to write must be greater than "
    "zero and match the data written.",
    WRITE_BUFFER_TOO_SMALL: "Write cannot be performed, because the number of "
    "channels in the data does not match the number of channels in the task.",
    PHYS_CHAN_DEV_NOT_IN_TASK: "Physical channel of the device is not in the task.",
    DEVICE_NOT_FOUND: "Device identifier is invalid.",
    RESOURCE_RESERVED: "The specified resource is reserved. The operation could not "
    "be completed as specified.",
    INVALID_ROUTING_SOURCE_TERMINAL_NAME: "Source terminal to be routed could not be "
    "found on the device.",
    INVALID_ROUTING_DESTINATION_TERMINAL_NAME: "Destination terminal to be routed "
    "could not be found on the device.",
    ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT: "Specified property is not supported "
    "by the device or is not applicable to the task.",
    INVALID_PHYS_CHAN_TYPE: "I/O type of the physical channel does not match the "
    "I/O type required for the virtual channel being created.",
    SAMPLES_NOT_YET_AVAILABLE: "Some or all of the samples requested have not yet "
    "been acquired.",
    WRITE_NUM_CHANS_MISMATCH: "Number of channels in the data does not match the "
    "number of channels in the task.",
    READ_BUFFER_TOO_SMALL: "Buffer is too small to fit read data.",
    NUM_LINES_MISMATCH_IN_READ_OR_WRITE: "Specified read or write operation failed, "
    "because the number of lines in the data for a channel does not match the "
    "number of lines in the channel.",
    INVALID_CHANNEL: "Specified channel cannot be found in the task.",
    CHAN_ALREADY_IN_TASK: "Channel is already in the task.",
    FUNCTION_NOT_SUPPORTED_FOR_DEVICE_TASKS: "Function is not supported for "
    "tasks on this device.",
    TRIG_WHEN_ON_DEMAND_SAMP_TIMING: "Trigger cannot be configured when the "
    "sample timing type is on demand.",
    DIGITAL_OUTPUT_NOT_SUPPORTED: "Specified digital channel contains lines that "
    "do not support digital output.",
    DONE_EVENT_ALREADY_REGISTERED: "Done event is already registered for this task.",
    EVERY_N_SAMPS_EVENT_ALREADY_REGISTERED: "Every N Samples Acquired Into Buffer "
    "event is already registered for this task.",
    EVERY_N_SAMPS_TRANSFERRED_EVENT_ALREADY_REGISTERED: "Every N Samples "
    "Transferred From Buffer event is already registered for this task.",
    SIGNAL_EVENT_ALREADY_REGISTERED: "Signal event is already registered for "
    "this task.",
    EVERY_N_SAMPS_ACQ_EVENT_NOT_SUPPORTED: "Every N Samples Acquired Into Buffer "
    "event is not supported by the device for this task.",
    EVERY_N_SAMPS_TRANSFERRED_EVENT_NOT_SUPPORTED: "Every N Samples Transferred "
    "From Buffer event is not supported by the device for this task.",
    INVALID_RANGE_OF_OBJECTS_SYNTAX_IN_STRING: "Syntax for a range of objects in "
    "the input string is invalid.",
    CANNOT_WRITE_WHEN_AUTO_START_FALSE_AND_TASK_NOT_RUNNING: "Cannot write while "
    "the task is not running and auto start is false.",
    SAMPLES_CAN_NOT_YET_BE_WRITTEN: "Samples cannot yet be written: the output "
    "buffer has no space at the requested position.",
    NO_MORE_SPACE: "Write cannot be performed: the buffer has no more space.",
    OPERATION_TIMED_OUT: "The operation timed out.",
}


class DaqmxError(Exception):
    """A DAQmx error: its status code and the driver's message, plus detail."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        text = MESSAGES.get(code, f"DAQmx error {code}")
        super().__init__(f"{text}\n{detail}" if detail else text)


def message_for(code: int) -> str:
    """The driver's text for a status code ('' if unknown)."""
    if code in MESSAGES:
        return MESSAGES[code]
    return f"Unknown DAQmx status code {code}." if code else ""
