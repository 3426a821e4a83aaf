"""The worker's line protocol: typed both ways, framing survives any split, stray output is
not an answer, and a line that is not a request is one clear error."""

import json

import pytest

from TumorClassifierLib.worker.protocol import (
    REPLIES,
    REQUESTS,
    BatchRequest,
    CancelRequest,
    ClassifyRequest,
    Error,
    ErrorKind,
    Exited,
    FetchModelRequest,
    LineDecoder,
    Log,
    Progress,
    ProtocolError,
    Ready,
    Result,
    decode_reply,
    decode_request,
    encode,
    request_id_of,
)


def test_encoded_messages_are_one_ascii_line():
    line = encode(Error("1", ErrorKind.INPUT, "scan\nwith a newline: Größe"))
    assert line.endswith("\n") and line.count("\n") == 1
    line.encode("ascii")
    assert json.loads(line) == {"type": "error", "id": "1", "kind": "input",
                                "message": "scan\nwith a newline: Größe"}


@pytest.mark.parametrize("request_", [
    ClassifyRequest(id="1", input="a.nii.gz", out="o", cam_class="MEN", tta=True),
    BatchRequest(id="2", inputs=["a", "b"], out="o", results_csv="t.csv", prefetch=0),
    FetchModelRequest(id="3", url="https://x/m.zip", sha256="0" * 64),
    CancelRequest(id="4", target="2"),
], ids=lambda r: r.TYPE.value)
def test_every_request_comes_back_as_it_was_sent(request_):
    assert decode_request(encode(request_)) == request_


@pytest.mark.parametrize("reply", [
    Ready(pid=7, devices=[{"device": "cpu", "name": "CPU"}], versions={"torch": "2"}),
    Progress("1", "registering", 0.25, "x"),
    Result("1", files={"heatmap": "h.nrrd"}, result={"probabilities": {"HGG": 1.0}}),
    Result("2", summary={"attempted": 2}), Result("3", path="/cache/m.zip"),
    Error("1", ErrorKind.CANCELLED, "cancelled"), Exited(1, "gone"),
], ids=lambda r: r.TYPE.value)
def test_every_reply_comes_back_as_it_was_sent(reply):
    assert decode_reply(encode(reply)) == reply


def test_the_type_names_are_the_wire_names():
    assert {t.value for t in REQUESTS} == {"classify", "batch", "fetch_model", "cancel"}
    assert {t.value for t in REPLIES} == {"ready", "progress", "result", "error", "log",
                                          "fatal", "exited"}


@pytest.mark.parametrize("split", [1, 2, 3, 7, 50])
def test_decoder_rebuilds_replies_split_anywhere(split):
    replies = [Progress(str(i), "stage", i / 10) for i in range(5)]
    text = "".join(encode(r) for r in replies)
    decoder = LineDecoder()
    decoded = []
    for start in range(0, len(text), split):
        decoded += decoder.feed(text[start:start + split])
    assert decoded == replies


def test_decoder_keeps_an_unfinished_line_until_its_end_arrives():
    decoder = LineDecoder()
    assert decoder.feed('{"type": "result", "id"') == []
    assert decoder.feed(': "1"}\n') == [Result("1")]


@pytest.mark.parametrize("line", ["Warning: something", "[1, 2]", '{"no": "type"}', "{",
                                  '{"type": "progress", "unknown_field": 1}',
                                  '{"type": "classify", "input": "a", "out": "b"}'])
def test_lines_that_are_not_replies_become_log_lines(line):
    assert decode_reply(line) == Log(line)


@pytest.mark.parametrize("line, message", [
    ("this is not json", "unknown request"),
    ('{"type": "ready"}', "unknown request"),
    ('{"id": "9", "type": "classify", "out": "o"}', "request '9' lacks 'input'"),
    ('{"id": "9", "type": "batch", "inputs": [], "out": "o"}', "lacks 'inputs'"),
    ('{"id": "9", "type": "classify", "input": "a", "out": "o", "colour": 1}',
     "does not take: ['colour']"),
])
def test_a_line_that_is_not_a_request_is_one_line_naming_the_problem(line, message):
    with pytest.raises(ProtocolError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_request(line)
    assert request_id_of(line) == ("9" if "9" in line else None)


def test_an_unknown_error_kind_is_an_internal_error():
    assert decode_reply('{"type": "error", "id": 3, "kind": "new", "message": "m"}') == \
        Error("3", ErrorKind.INTERNAL, "m")
