"""The words product names are made of: the seeder builds names from them and the traffic
generator searches with them, so a search finds something in every shop. Written once, here."""

from __future__ import annotations

# What a product is: one word of each name, and what a shopper types into the search box.
SEARCH_WORDS: tuple[str, ...] = (
    "kettle",
    "teapot",
    "mug",
    "lamp",
    "chair",
    "desk",
    "scarf",
    "jacket",
    "candle",
    "notebook",
    "pen",
    "bag",
    "bottle",
    "plate",
    "bowl",
    "clock",
    "towel",
    "pillow",
)

# What kind it is: names are "<adjective> <word>", and some searches include the adjective.
ADJECTIVES: tuple[str, ...] = (
    "classic",
    "modern",
    "compact",
    "deluxe",
    "organic",
    "vintage",
    "travel",
    "smart",
)
