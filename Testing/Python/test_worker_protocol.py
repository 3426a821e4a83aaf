"""The worker's line protocol: framing survives any split, and stray output is not an answer."""

import json

import pytest

from TumorClassifierLib.worker_protocol import LineDecoder, decode, encode


def test_encoded_messages_are_one_ascii_line():
    line = encode({"type": "error", "message": "scan\nwith a newline: Größe"})
    assert line.endswith("\n") and line.count("\n") == 1
    line.encode("ascii")
    assert json.loads(line)["message"] == "scan\nwith a newline: Größe"


@pytest.mark.parametrize("split", [1, 2, 3, 7, 50])
def test_decoder_rebuilds_messages_split_anywhere(split):
    messages = [{"type": "progress", "id": str(i), "fraction": i / 10} for i in range(5)]
    text = "".join(encode(m) for m in messages)
    decoder = LineDecoder()
    decoded = []
    for start in range(0, len(text), split):
        decoded += decoder.feed(text[start:start + split])
    assert decoded == messages


def test_decoder_keeps_an_unfinished_line_until_its_end_arrives():
    decoder = LineDecoder()
    assert decoder.feed('{"type": "result", "id"') == []
    assert decoder.feed(': "1"}\n') == [{"type": "result", "id": "1"}]


@pytest.mark.parametrize("line", ["Warning: something", "[1, 2]", '{"no": "type"}', "{"])
def test_lines_that_are_not_messages_become_log_lines(line):
    assert decode(line) == {"type": "log", "message": line}
