"""A shared location's country, offline: rough boxes around the countries Hamroh's users are in.

Why boxes and not a reverse geocoder: the server runs air-gapped, and the only use is to pick the
emergency number of the country the person is in. The smallest box that holds the point wins, which
settles the common cases (Tashkent is in Uzbekistan's box and in Kazakhstan's larger one); the bot
says which country it understood, so a wrong guess near a border is visible and can be corrected
with the country buttons.
"""

from __future__ import annotations

__all__ = ["country_at"]

#: ISO code: (south, north, west, east) in degrees; a country may need more than one box
_BOXES: dict[str, tuple[float, float, float, float]] = {
    "RU": (41.2, 81.9, 19.6, 180.0), "KZ": (40.5, 55.5, 46.5, 87.4), "UZ": (37.2, 45.6, 56.0, 73.2),
    "TJ": (36.7, 41.1, 67.3, 75.2), "KG": (40.3, 42.9, 71.0, 80.3), "TR": (35.8, 42.1, 26.0, 44.8),
    "IQ": (29.0, 37.4, 38.8, 48.6), "SA": (16.3, 32.2, 34.5, 55.7), "AE": (22.6, 26.1, 51.5, 56.4),
    "QA": (24.4, 26.2, 50.7, 51.7), "KW": (28.5, 30.1, 46.5, 48.5), "BH": (25.5, 26.4, 50.3, 50.9),
    "OM": (16.6, 26.4, 52.0, 59.9), "MY": (0.8, 7.4, 99.6, 119.3), "BD": (20.6, 26.7, 88.0, 92.7),
    "PK": (23.6, 37.1, 60.8, 77.9), "LK": (5.9, 9.9, 79.6, 81.9), "AF": (29.3, 38.5, 60.5, 75.0),
    "IR": (25.0, 39.8, 44.0, 63.3), "IN": (6.7, 35.5, 68.1, 97.4), "KR": (33.1, 38.7, 124.6, 131.9),
    "GB": (49.8, 60.9, -8.7, 1.8),
    "KG-batken": (39.2, 40.3, 69.6, 73.5), "TH": (5.6, 20.5, 97.3, 105.7), "NP": (26.3, 30.5, 80.0, 88.2),
}  # fmt: skip


def country_at(latitude: float, longitude: float) -> str | None:
    """The ISO code of the smallest known box around the point, or None outside all of them."""
    best: tuple[float, str] | None = None
    for code, (south, north, west, east) in _BOXES.items():
        if south <= latitude <= north and west <= longitude <= east:
            area = (north - south) * (east - west)
            if best is None or area < best[0]:
                best = (area, code.split("-")[0])
    return best[1] if best else None
