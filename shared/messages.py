"""The body of a collected message on Pub/Sub: JSON (gzip-compressed from a few KB on), its rows column by column.

Pub/Sub bills and the emulator works by the byte, and a batch of events is mostly repeated keys and values:
gzip at level 1 shrinks the bench's 100-event batches about 30 times for ~1.5 µs of CPU per event. A message below
GZIP_FROM_BYTES stays plain JSON: a single event's shrinks only about 2 times, and setting up a gzip stream costs
~25 µs, as much as validating the event. A reader tells the two apart by gzip's magic bytes (JSON never starts
with them), so plain-JSON messages (small ones, older collects, hand-published ones) load alike.

Collect publishes each table's rows as columns (`raw-columns/1`: {"tables": {table: {column: [values]}}}): no key
repeated on every row, and the loader turns each column into Arrow in one call instead of reading a dict per row
(about half the loader's JSON and Arrow time). Messages of row objects (`raw-rows/1`: {"rows": {table: [rows]}}),
which older collects published and which may still be in flight, load as before.

A large message goes as Arrow instead (`raw-arrow/1`, from ARROW_FROM_ROWS rows on): a short JSON header (schema,
batch id, site, each table's name and size) then the tables' Arrow IPC streams, zstd-compressed together. The
loader then reads typed columns as they are, where JSON costs it a parse and a conversion a column: about half its
CPU for a 5,000-row message (README, Benchmarks, session 9), and collect builds it for no more CPU than the JSON
and its gzip. Small messages stay JSON: an Arrow stream's schema alone is a few KB."""

from __future__ import annotations

import struct
import zlib
from operator import itemgetter
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

GZIP_MAGIC = b"\x1f\x8b"
GZIP_LEVEL = 1  # level 6 saves another 10% of bytes for 2.5x the CPU
MAX_DECODED_BYTES = 64 * 1024 * 1024  # far above Pub/Sub's 10 MB per message: a bound against a gzip bomb
GZIP_FROM_BYTES = 4096  # JSON from this size on is compressed: a few events and up
CONTENT_ENCODING = {"content_encoding": "gzip"}  # attribute of a compressed message, for people and tools reading it


MAX_REJECTED_PAYLOAD = 64 * 1024  # how much of a rejected input ops.rejected keeps (collect's and load's records)

COLUMNS_SCHEMA = "raw-columns/1"  # what collect publishes
ROWS_SCHEMA = "raw-rows/1"  # what collect published before; still read
ARROW_SCHEMA = "raw-arrow/1"  # what collect publishes for large messages
ARROW_MAGIC = b"CDP-ARROW\n"  # neither JSON nor gzip starts so
ARROW_FROM_ROWS = 100  # rows of all tables from which a message goes as Arrow
# The tables' streams are zstd-compressed together, whole: rows repeat one another and a landing repeats its page
# view (the same pages, agents, properties), which compressing buffer by buffer (Arrow's own IPC compression) misses:
# 100 KB against 258 KB for the bench's 5,000 rows, for 5 ms of CPU against 3 ms.
ARROW_COMPRESSION = "zstd"
_ZSTD = pa.Codec(ARROW_COMPRESSION, compression_level=3)
_HEADER_LENGTH = struct.Struct(">I")


class MessageDecodeError(ValueError):
    """The message's body is not what collect writes (not gzip it claims to be, or too large decoded)."""


def encode_message(document: dict[str, Any], *, gzip_from: int = GZIP_FROM_BYTES) -> bytes:
    """The message body: the document's JSON, gzip-compressed from `gzip_from` bytes on."""
    text = orjson.dumps(document)
    return zlib.compress(text, GZIP_LEVEL, wbits=31) if len(text) >= gzip_from else text


def is_compressed(data: bytes) -> bool:
    return data.startswith(GZIP_MAGIC)


def decode_message(data: bytes) -> bytes:
    """The JSON text of a message body, gzip or plain."""
    if not is_compressed(data):
        return data
    inflater = zlib.decompressobj(wbits=31)
    try:
        text = inflater.decompress(data, MAX_DECODED_BYTES)
    except zlib.error as exc:
        raise MessageDecodeError(f"message is not valid gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise MessageDecodeError(f"message decodes to more than {MAX_DECODED_BYTES} bytes")
    if not inflater.eof:
        raise MessageDecodeError("message is truncated gzip")
    return text


def is_arrow(data: bytes) -> bool:
    return data.startswith(ARROW_MAGIC)


def encode_arrow_message(batch_id: str, site_id: str | None, tables: dict[str, list[dict[str, Any]]]) -> bytes | None:
    """The `raw-arrow/1` body of these tables' rows, each column's type read from its values; None when a column's
    values have no one Arrow type (the caller sends JSON, which takes any)."""
    streams: list[tuple[str, bytes]] = []
    try:
        for name, rows in tables.items():
            arrow = _arrow_of(rows)
            sink = pa.BufferOutputStream()
            with ipc.new_stream(sink, arrow.schema) as writer:
                writer.write_table(arrow)
            streams.append((name, sink.getvalue().to_pybytes()))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, OverflowError):
        return None
    header = orjson.dumps(
        {
            "schema": ARROW_SCHEMA,
            "batch_id": batch_id,
            "site_id": site_id,
            "compression": ARROW_COMPRESSION,
            "tables": [[name, len(stream)] for name, stream in streams],
        }
    )
    compressed = _ZSTD.compress(b"".join(stream for _, stream in streams), asbytes=True)
    return b"".join([ARROW_MAGIC, _HEADER_LENGTH.pack(len(header)), header, compressed])


def _arrow_of(rows: list[dict[str, Any]]) -> pa.Table:
    keys = rows[0].keys() if rows else {}
    if all(row.keys() == keys for row in rows):  # collect's rows: Arrow reads them directly, a third faster
        return pa.Table.from_pylist(rows)  # (which takes the first row's keys for every row's)
    return pa.Table.from_pydict(to_columns(rows))


def decode_arrow_message(data: bytes) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    """The header and the tables of a `raw-arrow/1` body."""
    start = len(ARROW_MAGIC) + _HEADER_LENGTH.size
    try:
        (header_length,) = _HEADER_LENGTH.unpack_from(data, len(ARROW_MAGIC))
        header = orjson.loads(data[start : start + header_length])
        compressed = pa.BufferReader(pa.py_buffer(data)[start + header_length :])  # read in place, not copied
        streams = pa.py_buffer(pa.CompressedInputStream(compressed, header["compression"]).read(MAX_DECODED_BYTES + 1))
        if len(streams) > MAX_DECODED_BYTES:
            raise MessageDecodeError(f"message decodes to more than {MAX_DECODED_BYTES} bytes")
        position = 0
        tables: dict[str, pa.Table] = {}
        for name, length in header["tables"]:
            if position + length > len(streams):
                raise MessageDecodeError(f"Arrow message is truncated in table {name!r}")
            tables[name] = ipc.open_stream(streams[position : position + length]).read_all()
            position += length
    except (struct.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError, OSError, pa.ArrowException) as exc:
        raise MessageDecodeError(f"message is not valid {ARROW_SCHEMA}: {exc}") from None
    if position != len(streams):
        raise MessageDecodeError(f"Arrow message has {len(streams) - position} bytes after its tables")
    return header, tables


def to_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Row objects as columns: every key some row has, in first-seen order, None where a row lacks it."""
    if not rows:
        return {}
    if len(rows) == 1:  # a single event's row: the common case of a single call
        return {name: [value] for name, value in rows[0].items()}
    keys = rows[0].keys()
    # Every row has the same keys (collect's rows): one transpose. With a single key, itemgetter would return values,
    # not tuples, so that case takes the general path.
    if len(keys) > 1 and all(row.keys() == keys for row in rows):
        names = list(keys)
        return dict(zip(names, map(list, zip(*map(itemgetter(*names), rows), strict=True)), strict=True))
    names = list(dict.fromkeys(name for row in rows for name in row))
    return {name: [row.get(name) for row in rows] for name in names}


def to_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Columns of equal length as row objects (each row has every column, None included)."""
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def column_height(columns: dict[str, list[Any]]) -> int:
    """The number of rows of a table given as columns. Raises ValueError naming each column's length when they
    differ."""
    heights = {len(values) for values in columns.values()}
    if len(heights) > 1:
        lengths = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise ValueError(f"columns of different lengths ({lengths})")
    return heights.pop() if heights else 0


def kept_payload(text: str) -> dict[str, Any]:
    """An ops.rejected record's payload fields: as much of the input as it keeps, and whether it was cut."""
    return {"payload": text[:MAX_REJECTED_PAYLOAD], "payload_truncated": len(text) > MAX_REJECTED_PAYLOAD}
