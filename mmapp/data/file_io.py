"""Positional file I/O for the NDTiff sink, chosen by what the OS offers.

POSIX has ``os.pwritev``/``os.pwrite``/``os.pread``: one system call writes an
image's header, pixels and metadata at an offset, without moving the file
position. Windows' Python has none of them. The portable path seeks and
then writes: small parts (headers, metadata, images under 4 MiB) joined into
one buffer, every part of at least `DIRECT_WRITE_BYTES` (the pixels of large
frames) straight from its own memory, so a large frame's pixels are never
copied on the way to the file. It writes at the offset the writer keeps (the sink
writes from one thread per dataset, so a seek followed by writes is safe).

``MMAPP_PORTABLE_IO=1`` forces the portable path (tests and `bench stream`
run it on Linux); :func:`use_portable_io` switches it at run time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

HAS_POSITIONAL_IO = all(hasattr(os, name) for name in ("pwrite", "pwritev", "pread"))
_portable = os.environ.get("MMAPP_PORTABLE_IO", "") not in ("", "0")
# Portable path: parts this large are written as they are (a system call of
# their own, no copy); smaller ones are joined. Each call gives up the GIL and
# must take it back, which costs more than copying a small frame: `bench
# stream --io portable` on tmpfs, median ratio to raw writes of two runs each,
# a call per frame against joined runs: 512x512 0.55, 0.65 against 0.75, 0.82;
# 1024x1024 0.80, 0.72 against 0.92, 1.15; 2048x2048 0.81, 0.95 against 0.80,
# 0.93, with 0.4-0.9 ms less CPU per frame (the copy). 4 MiB is also the
# writer's run limit: such a frame is written alone anyway.
DIRECT_WRITE_BYTES = 4 * 1024 * 1024


def use_portable_io(portable: bool) -> None:
    """Write through seek + write (True) or positional calls (False, if any)."""
    global _portable
    _portable = portable


def io_path() -> str:
    """Which path writes now: 'positional' (pwritev) or 'portable' (seek+write)."""
    return "positional" if HAS_POSITIONAL_IO and not _portable else "portable"


def write_at(fd: int, data: memoryview, offset: int) -> int:
    """Write all of `data` at `offset`; returns the bytes written."""
    if io_path() == "positional":
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], offset + done)
        return done
    return _seek_and_write(fd, data, offset)


def write_gathered(fd: int, chunks: list[memoryview], offset: int) -> None:
    """Write every chunk at `offset`, in order: one `pwritev`, or a seek and
    writes that never copy a chunk of `DIRECT_WRITE_BYTES` or more."""
    if io_path() == "positional":
        while chunks:
            n = os.pwritev(fd, chunks, offset)
            offset += n
            while chunks and n >= len(chunks[0]):
                n -= len(chunks[0])
                chunks.pop(0)
            if chunks and n:
                chunks[0] = chunks[0][n:]
        return
    os.lseek(fd, offset, os.SEEK_SET)
    small: list[memoryview] = []
    for chunk in chunks:
        if len(chunk) < DIRECT_WRITE_BYTES:
            small.append(chunk)
            continue
        if small:
            _write_all(fd, memoryview(_joined(small)))
            small.clear()
        _write_all(fd, chunk)  # the pixels themselves: no copy
    if small:
        _write_all(fd, memoryview(_joined(small)))
    chunks.clear()


def read_at(fd: int, n: int, offset: int) -> bytes:
    """Read `n` bytes at `offset` (fewer only at the end of the file)."""
    if io_path() == "positional":
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    parts: list[bytes] = []
    while n > 0:
        part = os.read(fd, n)
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _joined(chunks: Sequence[memoryview]) -> bytes | memoryview:
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _seek_and_write(fd: int, data: memoryview, offset: int) -> int:
    os.lseek(fd, offset, os.SEEK_SET)
    return _write_all(fd, data)


def _write_all(fd: int, data: memoryview) -> int:
    """Write all of `data` at the file's position (short writes continued)."""
    done = 0
    while done < len(data):  # a short write is not an error: write the rest
        done += os.write(fd, data[done:])
    return done
