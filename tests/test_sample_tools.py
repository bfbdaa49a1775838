"""The sample tools' handlers (tools/weather.py, tools/clock.py, tools/calc.py) and sample_tools.yaml.

get_weather runs against a fake Open-Meteo on 127.0.0.1; nothing here touches the internet.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    """The sample handlers are files loaded by path (toolchat installs no `tools` package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"sample_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_calc, _clock, _weather = _load("calc"), _load("clock"), _load("weather")
MAX_EXPRESSION_LENGTH, calculate = _calc.MAX_EXPRESSION_LENGTH, _calc.calculate
get_time, time_in_zone = _clock.get_time, _clock.time_in_zone
describe_weather_code, get_weather = _weather.describe_weather_code, _weather.get_weather

CURRENT_FIELDS = "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,wind_speed_10m"

SAN_FRANCISCO = {
    "id": 5391959,
    "name": "San Francisco",
    "latitude": 37.77493,
    "longitude": -122.41942,
    "country": "United States",
    "admin1": "California",
    "timezone": "America/Los_Angeles",
}


def forecast_body(unit: str = "celsius") -> dict:
    fahrenheit = unit == "fahrenheit"
    return {
        "latitude": 37.763283,
        "longitude": -122.41286,
        "timezone": "America/Los_Angeles",
        "current_units": {
            "temperature_2m": "°F" if fahrenheit else "°C",
            "wind_speed_10m": "mp/h" if fahrenheit else "km/h",
        },
        "current": {
            "time": "2026-11-25T11:00",
            "interval": 900,
            "temperature_2m": 57.6 if fahrenheit else 14.2,
            "relative_humidity_2m": 80,
            "apparent_temperature": 55.9 if fahrenheit else 13.3,
            "weather_code": 2,
            "wind_speed_10m": 7.2 if fahrenheit else 11.6,
        },
    }


class FakeOpenMeteo:
    """Geocoding + forecast endpoints on one loopback port; records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.places: list[dict] | None = [SAN_FRANCISCO]
        self.forecast: dict | None = None  # None: built from the requested unit
        self.fail: dict[str, tuple[int, bytes]] = {}  # path -> (status, body)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                fake.requests.append((parts.path, query))
                if parts.path in fake.fail:
                    status, raw = fake.fail[parts.path]
                    self._send(status, raw)
                elif parts.path == "/v1/search":
                    body = {"generationtime_ms": 0.5}
                    if fake.places:
                        body["results"] = fake.places
                    self._send(200, json.dumps(body).encode())
                elif parts.path == "/v1/forecast":
                    body = fake.forecast or forecast_body(query.get("temperature_unit", ["celsius"])[0])
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error": true, "reason": "Not Found"}')

            def _send(self, status: int, raw: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def open_meteo(monkeypatch):
    fake = FakeOpenMeteo()
    fake.thread.start()
    monkeypatch.setenv("TOOLCHAT_GEOCODING_URL", fake.url)
    monkeypatch.setenv("TOOLCHAT_FORECAST_URL", fake.url + "/")  # a trailing slash is tolerated
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- get_weather ---------------------------------------------------------------------------


def test_get_weather_searches_the_name_before_the_comma_and_returns_current_conditions(open_meteo):
    result = get_weather("San Francisco, CA")

    assert result == {
        "location": "San Francisco, California, United States",
        "temperature": 14.2,
        "feels_like": 13.3,
        "unit": "°C",
        "humidity": 80,
        "wind_speed": 11.6,
        "wind_unit": "km/h",
        "conditions": "partly cloudy",
        "time": "2026-11-25T11:00",
        "timezone": "America/Los_Angeles",
    }
    assert open_meteo.requests == [
        ("/v1/search", {"name": ["San Francisco"], "count": ["1"], "language": ["en"], "format": ["json"]}),
        (
            "/v1/forecast",
            {
                "latitude": ["37.77493"],
                "longitude": ["-122.41942"],
                "current": [CURRENT_FIELDS],
                "temperature_unit": ["celsius"],
                "wind_speed_unit": ["kmh"],
                "timezone": ["auto"],
            },
        ),
    ]


def test_get_weather_in_fahrenheit_asks_for_fahrenheit_and_mph(open_meteo):
    result = get_weather("San Francisco", unit="fahrenheit")

    forecast_query = open_meteo.requests[1][1]
    assert forecast_query["temperature_unit"] == ["fahrenheit"]
    assert forecast_query["wind_speed_unit"] == ["mph"]
    assert result["temperature"] == 57.6
    assert result["feels_like"] == 55.9
    assert result["unit"] == "°F"
    assert result["wind_speed"] == 7.2
    assert result["wind_unit"] == "mph"


def test_get_weather_result_is_json_serialisable(open_meteo):
    assert json.loads(json.dumps(get_weather("San Francisco"))) == get_weather("San Francisco")


def test_get_weather_unknown_place_says_no_place_called(open_meteo):
    open_meteo.places = None

    with pytest.raises(Exception) as info:
        get_weather("Atlantis, Ocean")

    assert str(info.value) == "no place called 'Atlantis' was found; try a nearby city name"
    assert open_meteo.paths() == ["/v1/search"]


def test_get_weather_http_500_from_geocoding_is_a_clear_error(open_meteo):
    open_meteo.fail["/v1/search"] = (500, b"<html>Internal Server Error</html>")

    with pytest.raises(Exception) as info:
        get_weather("Paris")

    assert str(info.value) == "Open-Meteo geocoding request failed with HTTP 500"


def test_get_weather_http_400_from_forecast_includes_open_meteo_reason(open_meteo):
    open_meteo.fail["/v1/forecast"] = (
        400,
        b'{"error": true, "reason": "Latitude must be in range of -90 to 90\xc2\xb0."}',
    )

    with pytest.raises(Exception) as info:
        get_weather("Paris")

    assert str(info.value) == (
        "Open-Meteo forecast request failed with HTTP 400: Latitude must be in range of -90 to 90°."
    )


def test_get_weather_non_json_response_is_a_clear_error(open_meteo):
    open_meteo.fail["/v1/search"] = (200, b"not json at all")

    with pytest.raises(Exception) as info:
        get_weather("Paris")

    assert str(info.value) == "Open-Meteo geocoding returned a response that is not JSON"


def test_get_weather_connection_refused_fails_fast_with_short_message(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("TOOLCHAT_GEOCODING_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TOOLCHAT_FORECAST_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    started = time.monotonic()
    with pytest.raises(Exception) as info:
        get_weather("Paris")
    elapsed = time.monotonic() - started

    message = str(info.value)
    assert elapsed < 2.0
    assert message.startswith("could not reach Open-Meteo (")
    assert "\n" not in message and len(message) < 100
    assert "Traceback" not in message and "HTTPConnectionPool" not in message
    if sys.platform.startswith("linux"):
        assert message == "could not reach Open-Meteo (connection refused)"


@pytest.mark.parametrize("unit", ["kelvin", "", "C"])
def test_get_weather_rejects_unknown_unit_without_any_request(open_meteo, unit):
    with pytest.raises(ValueError) as info:
        get_weather("Paris", unit=unit)

    assert str(info.value) == f"unit must be 'celsius' or 'fahrenheit', got {unit!r}"
    assert open_meteo.requests == []


@pytest.mark.parametrize("location", ["", "   ", ", CA"])
def test_get_weather_rejects_empty_location_without_any_request(open_meteo, location):
    with pytest.raises(ValueError):
        get_weather(location)

    assert open_meteo.requests == []


@pytest.mark.parametrize(
    "code, words",
    [
        (0, "clear sky"),
        (2, "partly cloudy"),
        (3, "overcast"),
        (45, "fog"),
        (63, "moderate rain"),
        (75, "heavy snowfall"),
        (95, "thunderstorm"),
        (42, "unknown (WMO code 42)"),
        (None, "unknown"),
    ],
)
def test_weather_codes_map_to_words(code, words):
    assert describe_weather_code(code) == words


# --- get_time ------------------------------------------------------------------------------

NOON_UTC_JAN = datetime(2026, 1, 15, 12, 0, 0, tzinfo=timezone.utc)
NOON_UTC_JUL = datetime(2026, 7, 15, 12, 0, 0, tzinfo=timezone.utc)


def test_time_in_los_angeles_in_winter_is_pst():
    assert time_in_zone("America/Los_Angeles", NOON_UTC_JAN) == {
        "timezone": "America/Los_Angeles",
        "datetime": "2026-01-15T04:00:00-08:00",
        "utc_offset": "-08:00",
        "abbreviation": "PST",
        "weekday": "Thursday",
    }


def test_time_in_los_angeles_in_summer_is_pdt():
    result = time_in_zone("America/Los_Angeles", NOON_UTC_JUL)
    assert (result["utc_offset"], result["abbreviation"]) == ("-07:00", "PDT")


def test_time_in_kolkata_has_half_hour_offset_and_next_day():
    assert time_in_zone("Asia/Kolkata", datetime(2026, 1, 15, 20, 0, tzinfo=timezone.utc)) == {
        "timezone": "Asia/Kolkata",
        "datetime": "2026-01-16T01:30:00+05:30",
        "utc_offset": "+05:30",
        "abbreviation": "IST",
        "weekday": "Friday",
    }


def test_get_time_utc_now():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = get_time("UTC")
    after = datetime.now(timezone.utc)

    assert result["timezone"] == "UTC"
    assert result["utc_offset"] == "+00:00"
    assert result["abbreviation"] == "UTC"
    stamp = datetime.fromisoformat(result["datetime"])
    assert before <= stamp <= after
    assert result["weekday"] == stamp.strftime("%A")


def test_get_time_unknown_zone_is_a_clear_error():
    with pytest.raises(ValueError) as info:
        get_time("Mars/Base")

    assert str(info.value) == "unknown time zone 'Mars/Base'; use an IANA name like 'Europe/Paris'"


def test_get_time_wrong_case_suggests_the_real_name():
    with pytest.raises(ValueError) as info:
        get_time("europe/paris")

    assert str(info.value) == "unknown time zone 'europe/paris'; did you mean 'Europe/Paris'?"


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "/etc/passwd",
        "Europe/../Europe/Paris",
        "Europe/",
        "zone.tab",
        "tzdata.zi",
        "Europe\\Paris",
        "a\x00b",
        "Europe/Paris ; rm -rf /",
    ],
)
def test_get_time_path_like_or_malformed_zone_is_one_clear_error(name):
    with pytest.raises(ValueError) as info:
        get_time(name)

    assert str(info.value) == f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris'"


def test_get_time_very_long_name_is_not_echoed():
    with pytest.raises(ValueError) as info:
        get_time("A/" * 500)

    assert str(info.value) == "unknown time zone that name; use an IANA name like 'Europe/Paris'"


# --- calculate -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, result",
    [
        ("2 + 2", "4"),
        ("7 / 2", "3.5"),
        ("4 / 2", "2"),
        ("10 // 3", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("2 ** 10", "1024"),
        ("2 ** -1", "0.5"),
        ("-3 ** 2", "-9"),
        ("(1 + 2) * (3 + 4)", "21"),
        ("+5 - -5", "10"),
        ("0.1 + 0.2", "0.3"),
        ("1e-20", "1e-20"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("sqrt(16)", "4"),
        ("sqrt(2)", "1.4142135623731"),
        ("sin(pi / 2)", "1"),
        ("cos(0)", "1"),
        ("tan(0)", "0"),
        ("log(e)", "1"),
        ("log(8, 2)", "3"),
        ("exp(0)", "1"),
        ("abs(-5)", "5"),
        ("round(2.675, 2)", "2.67"),
        ("round(3.5)", "4"),
        ("floor(-2.5)", "-3"),
        ("ceil(2.1)", "3"),
        ("pi", "3.14159265358979"),
        ("-0.0", "0"),
        ("2 * (3 + 4) / sqrt(16)", "3.5"),
    ],
)
def test_calculate_good_expressions(expression, result):
    assert calculate(expression) == result


@pytest.mark.parametrize(
    "expression, message",
    [
        ("__import__('os')", "function '__import__' is not allowed"),
        ("().__class__", "attribute access ('.__class__') is not allowed"),
        ("(1).__class__", "attribute access ('.__class__') is not allowed"),
        ("'a' * 3", "strings are not allowed"),
        ("x", "unknown name 'x'"),
        ("lambda: 1", "lambda expressions are not allowed"),
        ("[i for i in (1, 2)]", "comprehensions are not allowed"),
        ("print(1)", "function 'print' is not allowed"),
        ("1 < 2", "comparisons are not allowed"),
        ("True + 1", "True is not a number"),
        ("1 << 100", "operator '<<' is not allowed"),
        ("~1", "operator '~' is not allowed"),
        ("2j", "complex numbers (like 2j) are not allowed"),
        ("sin(x=1)", "sin() does not take keyword arguments"),
        ("abs(1, 2)", "abs() takes 1 argument, got 2"),
        ("sqrt", "'sqrt' is a function; call it like sqrt(2)"),
        ("1 / 0", "division by zero"),
        ("5 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("9**9**9", "result is too large"),
        ("2 ** 100000", "result is too large"),
        ("9**999 * 9**999", "result is too large"),
        ("10.0 ** 400", "result is too large"),
        ("exp(1000)", "result is too large"),
        ("1e308 * 10", "result is too large"),
        ("round(5, -10**9)", "round() digits must be between -1000 and 1000"),
        ("sqrt(-1)", "sqrt(-1) is undefined (math domain error)"),
        ("log(0)", "log(0) is undefined (math domain error)"),
        ("(-8) ** 0.5", "result is not a real number"),
        ("-" * 200 + "1", "expression is nested too deeply"),
        ("1 +", "invalid expression"),
        ("", "expression is empty"),
        ("1" * (MAX_EXPRESSION_LENGTH + 1), "expression is too long (1001 characters; the limit is 1000)"),
    ],
)
def test_calculate_rejects_with_clear_message_quickly(expression, message):
    started = time.monotonic()
    with pytest.raises(ValueError) as info:
        calculate(expression)
    elapsed = time.monotonic() - started

    assert str(info.value).startswith(message)
    assert elapsed < 0.5


def test_calculate_rejections_list_what_is_allowed():
    with pytest.raises(ValueError) as info:
        calculate("x")

    assert str(info.value) == (
        "unknown name 'x'; allowed: numbers, + - * / // % **, parentheses, "
        "abs, ceil, cos, exp, floor, log, round, sin, sqrt, tan, e, pi"
    )


def test_calculate_allows_big_integers_up_to_the_cap():
    assert calculate("2 ** 3000") == str(2**3000)


def test_calculate_never_uses_eval_exec_or_compile():
    source = (ROOT / "tools" / "calc.py").read_text(encoding="utf-8")
    for forbidden in ("eval(", "exec(", "compile("):
        assert forbidden not in source.replace("_eval(", "")


# --- sample_tools.yaml ---------------------------------------------------------------------


def test_sample_tools_yaml_describes_the_three_handlers():
    data = yaml.safe_load((ROOT / "sample_tools.yaml").read_text(encoding="utf-8"))
    tools = {tool["name"]: tool for tool in data["tools"]}

    assert list(tools) == ["get_weather", "get_time", "calculate"]
    assert {name: (t["handler"], t["timeout"]) for name, t in tools.items()} == {
        "get_weather": ("tools/weather.py:get_weather", 20),
        "get_time": ("tools/clock.py:get_time", 5),
        "calculate": ("tools/calc.py:calculate", 5),
    }
    assert tools["get_weather"]["input_schema"]["required"] == ["location"]
    assert tools["get_weather"]["input_schema"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert tools["get_time"]["input_schema"]["required"] == ["timezone"]
    assert tools["calculate"]["input_schema"]["required"] == ["expression"]
    for tool in tools.values():
        assert tool["input_schema"]["type"] == "object"
        assert len(tool["description"]) > 40
