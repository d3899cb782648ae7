"""A NI-DAQmx gRPC server answering every call with an empty success response.

What a test suite passes against it is what it cannot tell from a real card.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
from nidaqmx._stubs import nidaqmx_pb2 as pb


class NullServer:
    """Every NiDAQmx RPC answers its response type's defaults."""

    def __init__(self) -> None:
        service = pb.DESCRIPTOR.services_by_name["NiDAQmx"]
        handlers: dict[str, Any] = {}
        for method in service.methods:
            request = getattr(pb, method.input_type.name)
            response = getattr(pb, method.output_type.name)
            if method.server_streaming:
                handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                    lambda req, ctx: iter(()),
                    request_deserializer=request.FromString,
                    response_serializer=response.SerializeToString,
                )
            else:
                handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                    lambda req, ctx, r=response: r(),
                    request_deserializer=request.FromString,
                    response_serializer=response.SerializeToString,
                )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.full_name, handlers),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def start(self) -> NullServer:
        """Serve in the background."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop(grace=0.2).wait(2.0)
