"""The HTTP session reads the proxy and CA settings of the environment once, as requests would
at each request."""

from __future__ import annotations

import pytest

from tap_kore_billing.client.api import KoreApi

CONFIG = {
    "api_url": "https://platform.kore.ai",
    "requests_per_minute": 60,
    "requests_per_hour": 1800,
    "request_timeout": 60,
    "retry_attempts": 8,
    "retry_initial_delay": 1.0,
}


def test_a_proxy_of_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    session = KoreApi(CONFIG, "test").session
    assert session.proxies["https"] == "http://proxy.example:3128"
    assert session.verify == "/etc/ssl/corporate.pem"
    assert not session.trust_env  # read once, not again at every request


def test_no_proxy_for_the_host_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "kore.ai")
    session = KoreApi(CONFIG, "test").session
    assert "https" not in session.proxies
