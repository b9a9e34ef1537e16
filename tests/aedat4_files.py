"""Write small AEDAT4 event files, so the CIFAR10-DVS path is tested on real files.

AEDAT4 (iniVation DV, https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-4.0.html)
is: the magic line ``#!AER-DAT4.0\\r\\n``; a size-prefixed flatbuffer
``IOHeader`` (identifier ``IOHE``: compression, data-table position, and an
XML description of the output streams); then packets, each a little-endian
``int32`` stream id, an ``int32`` byte size and a size-prefixed flatbuffer
(``EVTS`` for events: a vector of 16-byte ``Event`` structs
``{int64 t; int16 x; int16 y; bool on}``), compressed as the header says.
tonic reads these files with the ``aedat`` package, which is what the tests
exercise; this writer only uses the public ``flatbuffers`` builder.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSION = {"none": 0, "lz4": 1, "zstd": 3}
#: The flatbuffer ``Event`` struct: 8-byte aligned, 3 bytes of tail padding.
EVENT_STRUCT = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
assert EVENT_STRUCT.itemsize == 16


def _description(width: int, height: int) -> str:
    return (
        '<dv version="2.0">'
        '<node name="outInfo" path="/mainloop/converter/outInfo/">'
        '<node name="0" path="/mainloop/converter/outInfo/0/">'
        '<attr key="compression" type="string">NONE</attr>'
        '<attr key="originalModuleName" type="string">converter</attr>'
        '<attr key="originalOutputName" type="string">events</attr>'
        '<attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>'
        '<attr key="typeIdentifier" type="string">EVTS</attr>'
        '<node name="info" path="/mainloop/converter/outInfo/0/info/">'
        f'<attr key="sizeX" type="int">{width}</attr>'
        f'<attr key="sizeY" type="int">{height}</attr>'
        '<attr key="source" type="string">dta-bench test</attr>'
        '</node></node></node></dv>')


def _ioheader(compression: int, description: str) -> bytes:
    b = flatbuffers.Builder(1024)
    text = b.CreateString(description)
    b.StartObject(3)  # compression, dataTablePosition (default -1: none), infoNode
    b.PrependInt32Slot(0, compression, 0)
    b.PrependUOffsetTRelativeSlot(2, text, 0)
    b.FinishSizePrefixed(b.EndObject(), b"IOHE")
    return bytes(b.Output())


def _event_packet(events: np.ndarray) -> bytes:
    raw = np.zeros(len(events), dtype=EVENT_STRUCT)
    raw["t"], raw["x"], raw["y"], raw["on"] = events["t"], events["x"], events["y"], events["p"]
    data = raw.tobytes()
    b = flatbuffers.Builder(len(data) + 64)
    b.StartVector(EVENT_STRUCT.itemsize, len(raw), 8)
    b.head -= len(data)  # a vector of structs is their bytes, back to back
    b.Bytes[b.head:b.head + len(data)] = data
    vector = b.EndVector()
    b.StartObject(1)
    b.PrependUOffsetTRelativeSlot(0, vector, 0)
    b.FinishSizePrefixed(b.EndObject(), b"EVTS")
    return bytes(b.Output())


def _compress(payload: bytes, compression: str) -> bytes:
    if compression == "none":
        return payload
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.compress(payload)
    raise ValueError(f"unsupported compression {compression!r}: use none or lz4")


def write_aedat4(path: Path, events: np.ndarray, *, width: int, height: int,
                 compression: str = "none", packet_size: int = 1000) -> None:
    """Write ``events`` (fields x, y, t, p) as one event stream, ``packet_size`` per packet."""
    parts = [MAGIC, _ioheader(COMPRESSION[compression], _description(width, height))]
    for start in range(0, len(events), packet_size):
        body = _compress(_event_packet(events[start:start + packet_size]), compression)
        parts += [np.int32(0).tobytes(), np.int32(len(body)).tobytes(), body]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"".join(parts))
