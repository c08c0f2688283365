"""one_line: MXNet's messages quoted inside ours lose their traceback and stack trace."""
import mxnet as mx
import pytest

from gluon_tricks.errors import one_line
from gluon_tricks.models.weights import WeightsError, read_params


def test_a_real_mxnet_error_keeps_its_message_not_its_traceback(tmp_path):
    garbage = tmp_path / "garbage.params"
    garbage.write_bytes(b"not an NDArray file" * 10)
    with pytest.raises(mx.base.MXNetError) as raised:
        mx.nd.load(str(garbage))
    assert "Traceback (most recent call last)" in str(raised.value)  # what MXNet 1.9 says
    assert one_line(raised.value) == ("MXNetError: Check failed: header == "
                                      "kMXAPINDArrayListMagic: Invalid NDArray file format")
    with pytest.raises(WeightsError) as refused:
        read_params(str(garbage))
    assert "Traceback" not in str(refused.value) and "ndarray.cc" not in str(refused.value)
    assert str(refused.value).endswith("Invalid NDArray file format)")


@pytest.mark.parametrize("message, expected", [
    # MXNet 1.9: C++ frames as a Python-style traceback, then the message
    ('Traceback (most recent call last):\n  File "../src/io/local_filesys.cc", line 209\n'
     'LocalFileSystem: Check failed: allow_null: :Open "x": No such file or directory\n',
     'LocalFileSystem: Check failed: allow_null: :Open "x": No such file or directory'),
    # older builds: log prefix, message, then "Stack trace:" and [bt] lines
    ("[09:12:45] ../src/ndarray/ndarray.cc:1755: Check failed: header == kMXAPINDArrayListMagic"
     " Invalid NDArray file format\n\nStack trace:\n  [bt] (0) /usr/lib/libmxnet.so(+0x1f)"
     " [0x7f]\n  [bt] (1) /usr/lib/libmxnet.so(MXNDArrayLoad+0x2) [0x7e]\n",
     "Check failed: header == kMXAPINDArrayListMagic Invalid NDArray file format"),
    # a Python traceback quoted in a message: frames and their source lines go
    ("MXNetError: Error in operator conv0\nTraceback (most recent call last):\n"
     '  File "net.py", line 3, in forward\n    return self.conv(x)\nValueError: bad shape',
     "MXNetError: Error in operator conv0"),
    ("Traceback (most recent call last):\n  File \"net.py\", line 3, in forward\n"
     "    return self.conv(x)\nValueError:   bad\tshape", "ValueError: bad shape"),
    ("one line already", "one line already"),
])
def test_one_line_cuts_stack_traces(message, expected):
    assert one_line(RuntimeError(message)) == expected


def test_one_line_limit_and_nothing_meaningful():
    assert one_line(RuntimeError("x" * 300), limit=20) == "x" * 20
    assert one_line(RuntimeError("Traceback (most recent call last):\n  File \"a\", line 1"))\
        == "RuntimeError"
