"""The no_network guard used by the conversion fixtures really stops downloads (else 'offline' proves nothing)."""
import pytest
import requests

from tests.conftest import no_network


def test_no_network_stops_and_records_a_download():
    with no_network() as attempts, pytest.raises(Exception, match="network access attempted"):
        requests.get("https://github.com/PINTO0309/onnx2tf/releases/download/1.20.4/x.npy", timeout=(1.0, 5.0))
    assert attempts
