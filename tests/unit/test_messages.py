"""Collected messages on Pub/Sub: JSON out (gzip from a few events on), gzip or plain JSON in, bounded."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson
import pytest

from shared import messages
from shared.messages import (
    MessageDecodeError,
    column_height,
    decode_arrow_message,
    decode_message,
    encode_arrow_message,
    encode_message,
    is_arrow,
    is_compressed,
    to_columns,
    to_rows,
)


def test_round_trip_and_plain_json_still_reads() -> None:
    document = {"schema": "raw-rows/1", "rows": {"raw.page": [{"event_id": "e", "raw": "{}" * 5000}]}}
    encoded = encode_message(document)
    assert messages.is_compressed(encoded) and len(encoded) < len(orjson.dumps(document)) / 10
    assert orjson.loads(decode_message(encoded)) == document
    assert decode_message(orjson.dumps(document)) == orjson.dumps(document)


def test_a_small_message_stays_plain_json() -> None:
    small = {"schema": "raw-rows/1", "rows": {"raw.page": [{"event_id": "e", "raw": "{}" * 100}]}}
    assert len(orjson.dumps(small)) < messages.GZIP_FROM_BYTES
    assert encode_message(small) == orjson.dumps(small) and not messages.is_compressed(encode_message(small))
    assert messages.is_compressed(encode_message(small, gzip_from=0))
    just_large = {"raw": "x" * (messages.GZIP_FROM_BYTES - len(orjson.dumps({"raw": ""})))}
    assert len(orjson.dumps(just_large)) == messages.GZIP_FROM_BYTES and messages.is_compressed(
        encode_message(just_large)
    )


def test_broken_and_oversized_gzip_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MessageDecodeError, match="not valid gzip"):
        decode_message(messages.GZIP_MAGIC + b"\x09\x00" + b"x" * 20)  # no such compression method
    with pytest.raises(MessageDecodeError, match="truncated"):
        decode_message(encode_message({"a": "b" * 1000}, gzip_from=0)[:-8])
    monkeypatch.setattr(messages, "MAX_DECODED_BYTES", 1000)
    bomb = zlib.compress(b"0" * 100_000, 9, wbits=31)
    with pytest.raises(MessageDecodeError, match="more than 1000 bytes"):
        decode_message(bomb)


def test_rows_to_columns_and_back() -> None:
    rows = [{"a": 1, "b": "x"}, {"b": "y", "c": [1]}, {}]
    columns = to_columns(rows)
    assert columns == {"a": [1, None, None], "b": ["x", "y", None], "c": [None, [1], None]}
    assert column_height(columns) == 3 and column_height({}) == 0 and to_columns([]) == {}
    assert to_rows(columns) == [
        {"a": 1, "b": "x", "c": None},
        {"a": None, "b": "y", "c": [1]},
        {"a": None, "b": None, "c": None},
    ]
    with pytest.raises(ValueError):
        to_rows({"a": [1, 2], "b": [1]})  # columns of different lengths are not a table
    with pytest.raises(ValueError, match=r"columns of different lengths \(a: 2, b: 1\)"):
        column_height({"a": [1, 2], "b": [1]})


def test_rows_with_the_same_keys_in_any_order_become_the_same_columns() -> None:
    rows = [{"a": 1, "b": "x"}, {"b": "y", "a": 2}]  # every row has every key (collect's rows)
    columns = to_columns(rows)
    assert columns == {"a": [1, 2], "b": ["x", "y"]}
    assert all(type(values) is list for values in columns.values())
    assert to_rows(columns) == rows
    assert to_columns([{"a": 1}]) == {"a": [1]}
    # as many keys in every row, but not the same ones: still every key of every row
    assert to_columns([{"a": 1, "b": 2}, {"a": 3, "c": 4}]) == {"a": [1, 3], "b": [2, None], "c": [None, 4]}


def test_an_arrow_message_round_trips_each_tables_columns_and_types() -> None:
    tables = {
        "raw.page": {"event_id": ["e1", "e2"], "price": [1.5, None], "birth_year": [1990, None], "title": [None, None]},
        "raw.event": {"event_id": ["e3"], "name": ["겨울 코트"]},
    }
    data = encode_arrow_message("b1", "shop", {name: to_rows(columns) for name, columns in tables.items()})
    assert data is not None and is_arrow(data) and not is_compressed(data)
    header, arrow = decode_arrow_message(data)
    assert (header["schema"], header["batch_id"], header["site_id"]) == ("raw-arrow/1", "b1", "shop")
    assert {name: table.to_pydict() for name, table in arrow.items()} == tables
    assert [str(f.type) for f in arrow["raw.page"].schema] == ["string", "double", "int64", "null"]


def test_columns_without_one_arrow_type_are_left_to_json() -> None:
    assert encode_arrow_message("b1", None, {"raw.page": [{"event_id": "e1"}, {"event_id": 2}]}) is None
    assert encode_arrow_message("b1", None, {"raw.page": [{"n": 2**70}]}) is None


def test_rows_with_different_keys_keep_every_column_in_arrow() -> None:
    rows = [{"event_id": "e1"}, {"event_id": "e2", "title": "t"}, {"title": "u", "event_id": "e3"}]
    data = encode_arrow_message("b1", None, {"raw.page": rows})
    assert data is not None
    (page,) = decode_arrow_message(data)[1].values()
    assert page.to_pydict() == {"event_id": ["e1", "e2", "e3"], "title": [None, "t", "u"]}


def reframed(data: bytes, change: Any) -> bytes:
    """An Arrow message with its header changed, its tables as they were."""
    start = len(messages.ARROW_MAGIC) + 4
    (length,) = struct.unpack_from(">I", data, len(messages.ARROW_MAGIC))
    header = orjson.dumps(change(orjson.loads(data[start : start + length])))
    return messages.ARROW_MAGIC + struct.pack(">I", len(header)) + header + data[start + length :]


def test_a_broken_arrow_message_is_named() -> None:
    data = encode_arrow_message("b1", None, {"raw.page": [{"event_id": "e1"}]})
    assert data is not None

    def longer(header: dict[str, Any]) -> dict[str, Any]:
        return {**header, "tables": [[name, length + 10] for name, length in header["tables"]]}

    def shorter(header: dict[str, Any]) -> dict[str, Any]:
        return {**header, "tables": [[name, length - 10] for name, length in header["tables"]]}

    cases = (
        (data[:-4], "Truncated compressed stream"),
        (data + b"x", "not valid raw-arrow/1"),
        (data[:12], "not valid raw-arrow/1"),
        (reframed(data, longer), "truncated in table 'raw.page'"),
        (reframed(data, shorter), "not valid raw-arrow/1"),
        (reframed(data, lambda header: {**header, "compression": "rar"}), "not valid raw-arrow/1"),
    )
    for broken, reason in cases:
        with pytest.raises(MessageDecodeError, match=reason):
            decode_arrow_message(broken)
    assert decode_arrow_message(reframed(data, lambda header: header))[1]["raw.page"].num_rows == 1
