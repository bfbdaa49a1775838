"""get_weather: current conditions for a place, from Open-Meteo (no API key needed).

Two requests: the geocoding API turns the place name into coordinates, then the
forecast API returns the current conditions there. Base URLs can be pointed
elsewhere (a mirror, a local fake in tests) with TOOLCHAT_GEOCODING_URL and
TOOLCHAT_FORECAST_URL; they are read on every call.
"""

from __future__ import annotations

import os
import re
from typing import Any

DEFAULT_GEOCODING_URL = "https://geocoding-api.open-meteo.com"
DEFAULT_FORECAST_URL = "https://api.open-meteo.com"

# (connect, read) seconds for each request.
TIMEOUT = (5, 10)

_UNITS = {
    # unit -> (temperature_unit, wind_speed_unit, temperature label, wind label)
    "celsius": ("celsius", "kmh", "°C", "km/h"),
    "fahrenheit": ("fahrenheit", "mph", "°F", "mph"),
}

# WMO weather interpretation codes, as documented by Open-Meteo.
WMO_CODES = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snowfall",
    73: "moderate snowfall",
    75: "heavy snowfall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


class WeatherError(RuntimeError):
    """A failure talking to Open-Meteo; the message is meant for the model/user."""


def describe_weather_code(code: Any) -> str:
    try:
        return WMO_CODES.get(int(code), f"unknown (WMO code {code})")
    except (TypeError, ValueError):
        return "unknown"


def _base_url(env_var: str, default: str) -> str:
    return (os.environ.get(env_var) or default).rstrip("/")


def _short_reason(exc: Exception) -> str:
    """One short phrase for a requests exception: no traceback, no urllib3 essay."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out waiting for a response"
    text = str(exc)
    if "NameResolutionError" in text or "Failed to resolve" in text or "getaddrinfo" in text:
        return "DNS lookup failed"
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip().rstrip(".").lower()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS/SSL error"
    first = text.splitlines()[0].strip() if text.strip() else ""
    if first and len(first) <= 80:
        return first
    return type(exc).__name__


def _get_json(url: str, params: dict[str, Any], what: str) -> Any:
    import requests

    try:
        resp = requests.get(url, params=params, timeout=TIMEOUT)
    except requests.exceptions.RequestException as exc:
        raise WeatherError(f"could not reach Open-Meteo ({_short_reason(exc)})") from None

    if resp.status_code >= 400:
        reason = ""
        try:
            body = resp.json()
            if isinstance(body, dict) and body.get("reason"):
                reason = ": " + str(body["reason"]).strip().splitlines()[0][:200]
        except ValueError:
            pass
        raise WeatherError(f"Open-Meteo {what} request failed with HTTP {resp.status_code}{reason}")

    try:
        return resp.json()
    except ValueError:
        raise WeatherError(f"Open-Meteo {what} returned a response that is not JSON") from None


def _place_label(place: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("name", "admin1", "country"):
        value = place.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in parts:
            parts.append(value.strip())
    return ", ".join(parts)


def get_weather(location: str, unit: str = "celsius") -> dict[str, Any]:
    """Current weather for `location` ("San Francisco, CA", "Paris", ...)."""
    if not isinstance(location, str) or not location.strip():
        raise ValueError("location must be a non-empty place name, e.g. 'San Francisco, CA'")
    unit_key = unit.strip().lower() if isinstance(unit, str) else unit
    if unit_key not in _UNITS:
        raise ValueError(f"unit must be 'celsius' or 'fahrenheit', got {unit!r}")
    temperature_unit, wind_unit, temp_label, wind_label = _UNITS[unit_key]

    # "San Francisco, CA" -> search "San Francisco": the geocoder matches names, not "city, region".
    name = location.split(",")[0].strip()
    if not name:
        raise ValueError(f"no place name in {location!r}; give a city name, e.g. 'San Francisco, CA'")

    geocoding = _base_url("TOOLCHAT_GEOCODING_URL", DEFAULT_GEOCODING_URL)
    found = _get_json(
        f"{geocoding}/v1/search",
        {"name": name, "count": 1, "language": "en", "format": "json"},
        "geocoding",
    )
    results = found.get("results") if isinstance(found, dict) else None
    if not results or not isinstance(results, list) or not isinstance(results[0], dict):
        raise WeatherError(f"no place called {name!r} was found; try a nearby city name")
    place = results[0]
    try:
        latitude = float(place["latitude"])
        longitude = float(place["longitude"])
    except (KeyError, TypeError, ValueError):
        raise WeatherError("Open-Meteo geocoding returned a place without coordinates") from None

    forecast = _base_url("TOOLCHAT_FORECAST_URL", DEFAULT_FORECAST_URL)
    data = _get_json(
        f"{forecast}/v1/forecast",
        {
            "latitude": latitude,
            "longitude": longitude,
            "current": "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,wind_speed_10m",
            "temperature_unit": temperature_unit,
            "wind_speed_unit": wind_unit,
            "timezone": "auto",
        },
        "forecast",
    )
    current = data.get("current") if isinstance(data, dict) else None
    if not isinstance(current, dict):
        raise WeatherError("Open-Meteo forecast response has no current conditions")

    return {
        "location": _place_label(place) or name,
        "temperature": current.get("temperature_2m"),
        "feels_like": current.get("apparent_temperature"),
        "unit": temp_label,
        "humidity": current.get("relative_humidity_2m"),
        "wind_speed": current.get("wind_speed_10m"),
        "wind_unit": wind_label,
        "conditions": describe_weather_code(current.get("weather_code")),
        "time": current.get("time"),
        "timezone": data.get("timezone"),
    }
