"""`toolchat --demo` needs no network: the weather comes from the mock server's Open-Meteo look-alike."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, clean_env

PROMPT = "What's the weather in San Francisco?"


def tool_results(document: dict) -> dict:
    results = {}
    names = {}
    for message in document["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block["type"] == "tool_use":
                names[block["id"]] = block["name"]
            elif block["type"] == "tool_result":
                text = (
                    "".join(part["text"] for part in block["content"])
                    if isinstance(block["content"], list)
                    else block["content"]
                )
                results[names[block["tool_use_id"]]] = (text, block.get("is_error", False))
    return results


def assert_weather_reading(document: dict) -> None:
    assert document["error"] is None
    text, is_error = tool_results(document)["get_weather"]
    assert not is_error, text
    reading = json.loads(text)
    assert reading["location"] == "San Francisco, California, United States"
    assert (reading["temperature"], reading["unit"], reading["conditions"]) == (14.2, "°C", "partly cloudy")
    assert reading["timezone"] == "America/Los_Angeles"
    assert '"temperature": 14.2' in document["text"] and "error" not in document["text"]


def _loopback_only_namespace() -> str | None:
    """Why a loopback-only network namespace cannot be made here, or None when it can."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "unshare -n needs root"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "needs unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare -n failed: {probe.stderr.decode(errors='replace').strip()}"
    return None


@pytest.mark.skipif(_loopback_only_namespace() is not None, reason=str(_loopback_only_namespace()))
def test_demo_answers_with_a_weather_reading_in_a_namespace_with_only_loopback(tmp_path):
    env = clean_env(tmp_path)
    for key in ("TOOLCHAT_GEOCODING_URL", "TOOLCHAT_FORECAST_URL"):
        env.pop(key)  # the demo must not need them: by default get_weather would go to Open-Meteo
    # Inside the namespace, the outside world is unreachable (proved first), and the demo still works.
    script = (
        "ip link set lo up && "
        f"! {sys.executable} -c 'import socket; socket.create_connection((\"1.1.1.1\", 443), 3)' "
        "2>/dev/null && "
        f'exec {sys.executable} -m toolchat --demo --json "$0"'
    )
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, PROMPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc
    assert_weather_reading(json.loads(proc.stdout))


def test_demo_uses_the_mock_weather_even_when_open_meteo_is_unreachable(toolchat):
    # clean_env points TOOLCHAT_GEOCODING_URL/FORECAST_URL at a closed port; --demo overrides them.
    run = toolchat("--demo", "--json", PROMPT, key=None)
    assert run.code == 0, run
    assert_weather_reading(run.json())


def test_the_sample_get_weather_reads_the_mock_server(mock, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("sample_weather_mock", ROOT / "tools" / "weather.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = mock()
    monkeypatch.setenv("TOOLCHAT_GEOCODING_URL", server.url)
    monkeypatch.setenv("TOOLCHAT_FORECAST_URL", server.url)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    paris = module.get_weather("Paris, France", unit="fahrenheit")
    assert {
        k: paris[k]
        for k in (
            "location",
            "temperature",
            "feels_like",
            "unit",
            "humidity",
            "wind_speed",
            "wind_unit",
            "conditions",
            "timezone",
        )
    } == {
        "location": "Paris, Île-de-France, France",
        "temperature": 53.1,
        "feels_like": 51.6,
        "unit": "°F",
        "humidity": 76,
        "wind_speed": 5.8,
        "wind_unit": "mph",
        "conditions": "mainly clear",
        "timezone": "Europe/Paris",
    }
    with pytest.raises(module.WeatherError, match="no place called 'Atlantis' was found"):
        module.get_weather("Atlantis")
    assert [(r.method, r.path.split("?")[0]) for r in server.requests] == [
        ("GET", "/v1/search"),
        ("GET", "/v1/forecast"),
        ("GET", "/v1/search"),
    ]


def test_the_mock_forecast_rejects_bad_coordinates_as_open_meteo_does(mock):
    import requests

    server = mock()
    reply = requests.get(
        server.url + "/v1/forecast", params={"latitude": 91, "longitude": 0, "current": "temperature_2m"}, timeout=10
    )
    assert reply.status_code == 400
    assert reply.json() == {
        "error": True,
        "reason": "Latitude must be in range of -90 to 90°. Longitude must be in range of -180 to 180°.",
    }
