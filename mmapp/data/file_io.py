"""Positional file I/O for the NDTiff sink, chosen by what the OS offers.

POSIX has ``os.pwritev``/``os.pwrite``/``os.pread``: one system call writes an
image's header, pixels and metadata at an offset, without moving the file
position. Windows' Python has none of them. The portable path seeks and then
writes the image's parts joined into one buffer, so it too writes each image
with one write call, at the offset the writer keeps (the sink writes from one
thread per dataset, so a seek followed by a write is safe there).

``MMAPP_PORTABLE_IO=1`` forces the portable path (tests and `bench stream`
run it on Linux); :func:`use_portable_io` switches it at run time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

HAS_POSITIONAL_IO = all(hasattr(os, name) for name in ("pwrite", "pwritev", "pread"))
_portable = os.environ.get("MMAPP_PORTABLE_IO", "") not in ("", "0")


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
    """Write every chunk at `offset`, in order, with as few calls as possible."""
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
    _seek_and_write(fd, memoryview(_joined(chunks)), offset)
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
    done = 0
    while done < len(data):  # a short write is not an error: write the rest
        done += os.write(fd, data[done:])
    return done
