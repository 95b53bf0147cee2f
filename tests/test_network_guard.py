"""The no_network guard used by the conversion fixtures really stops downloads (else 'offline' proves nothing)."""
import urllib.request

import pytest

from tests.conftest import no_network


def test_no_network_stops_and_records_a_download():
    url = "https://github.com/PINTO0309/onnx2tf/releases/download/1.20.4/x.npy"
    with no_network() as attempts, pytest.raises(Exception, match="network access attempted"):
        urllib.request.urlopen(url, timeout=5)
    assert attempts
