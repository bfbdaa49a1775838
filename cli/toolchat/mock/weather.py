"""An Open-Meteo look-alike for the offline demo: `GET /v1/search` (geocoding) and `GET /v1/forecast`.

The answers have Open-Meteo's shapes (what tools/weather.py reads) and made-up, fixed conditions for
a few cities; any other name is "not found", as Open-Meteo answers a name it does not know.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

PATHS = ("/v1/search", "/v1/forecast")
FIELDS = ("temperature_2m", "relative_humidity_2m", "apparent_temperature", "weather_code", "wind_speed_10m")

# name, admin1, country, latitude, longitude, time zone, (°C, humidity %, feels-like °C, WMO code, km/h)
PLACES = [
    (
        "San Francisco",
        "California",
        "United States",
        37.77493,
        -122.41942,
        "America/Los_Angeles",
        (14.2, 80, 13.3, 2, 11.6),
    ),
    ("New York", "New York", "United States", 40.71427, -74.00597, "America/New_York", (8.5, 65, 6.1, 3, 14.8)),
    ("London", "England", "United Kingdom", 51.50853, -0.12574, "Europe/London", (10.1, 87, 8.4, 61, 18.0)),
    ("Paris", "Île-de-France", "France", 48.85341, 2.3488, "Europe/Paris", (11.7, 76, 10.9, 1, 9.4)),
    ("Tokyo", "Tokyo", "Japan", 35.6895, 139.69171, "Asia/Tokyo", (16.3, 58, 15.8, 0, 7.2)),
]


def answer(path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
    """(HTTP status, JSON body) for a GET of `path` with the parsed query string."""
    if path == "/v1/search":
        return 200, _search(_one(query, "name"), _one(query, "count"))
    return _forecast(query)


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0]


def _search(name: str, count: str) -> dict:
    body: dict[str, Any] = {"generationtime_ms": 0.1}
    wanted = name.strip().casefold()
    found = [place for place in PLACES if place[0].casefold() == wanted]
    limit = int(count) if count.isdigit() and int(count) > 0 else 10
    if found:
        body["results"] = [
            {
                "id": 1000 + PLACES.index(p),
                "name": p[0],
                "latitude": p[3],
                "longitude": p[4],
                "country": p[2],
                "admin1": p[1],
                "timezone": p[5],
            }
            for p in found[:limit]
        ]
    return body


def _error(reason: str) -> tuple[int, dict]:
    return 400, {"error": True, "reason": reason}


def _forecast(query: dict[str, list[str]]) -> tuple[int, dict]:
    try:
        latitude, longitude = float(_one(query, "latitude")), float(_one(query, "longitude"))
    except ValueError:
        return _error("Parameter 'latitude' and 'longitude' must be numbers")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return _error("Latitude must be in range of -90 to 90°. Longitude must be in range of -180 to 180°.")
    requested = [f for f in _one(query, "current").split(",") if f]
    unknown = [f for f in requested if f not in FIELDS]
    if unknown:
        return _error(f"Cannot initialize WeatherVariable from invalid String value {unknown[0]}")
    fahrenheit = _one(query, "temperature_unit") == "fahrenheit"
    wind_unit = _one(query, "wind_speed_unit") or "kmh"
    place = min(PLACES, key=lambda p: (p[3] - latitude) ** 2 + (p[4] - longitude) ** 2)
    celsius, humidity, feels, code, kmh = place[6]

    def temperature(value: float) -> float:
        return round(value * 9 / 5 + 32, 1) if fahrenheit else value

    wind = {"kmh": kmh, "mph": round(kmh / 1.609344, 1), "ms": round(kmh / 3.6, 1), "kn": round(kmh / 1.852, 1)}.get(
        wind_unit, kmh
    )
    values = {
        "temperature_2m": temperature(celsius),
        "relative_humidity_2m": humidity,
        "apparent_temperature": temperature(feels),
        "weather_code": code,
        "wind_speed_10m": wind,
    }
    units = {
        "temperature_2m": "°F" if fahrenheit else "°C",
        "relative_humidity_2m": "%",
        "apparent_temperature": "°F" if fahrenheit else "°C",
        "weather_code": "wmo code",
        "wind_speed_10m": {"kmh": "km/h", "mph": "mp/h", "ms": "m/s", "kn": "kn"}.get(wind_unit, "km/h"),
    }
    zone = place[5] if _one(query, "timezone") == "auto" else "GMT"
    now = _local_now(zone)
    current: dict[str, Any] = {"time": now.strftime("%Y-%m-%dT%H:%M"), "interval": 900}
    current.update({f: values[f] for f in requested})
    return 200, {
        "latitude": latitude,
        "longitude": longitude,
        "generationtime_ms": 0.1,
        "utc_offset_seconds": int((now.utcoffset() or timedelta()).total_seconds()),
        "timezone": zone,
        "current_units": {"time": "iso8601", "interval": "seconds", **{f: units[f] for f in requested}},
        "current": current,
    }


def _local_now(zone: str) -> datetime:
    """Now in `zone`, down to the quarter hour (Open-Meteo's 15-minute interval)."""
    now = datetime.now(timezone.utc)
    try:
        from zoneinfo import ZoneInfo

        now = now.astimezone(ZoneInfo(zone))
    except Exception:  # no time zone database: UTC, still a valid answer
        pass
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
