"""The corpus's ``json`` part: extraction records in the shape of data/format, plus objects of random shapes."""

from __future__ import annotations

import json
import random

from evalkit.fmt import EXTRACTION_PROMPT, shape
from evalkit.ladder.corpus.reading import CHAT, CITIES, DAYS, MATERIALS, PEOPLE, capitalized
from evalkit.settings import get_settings

ANIMALS = {"cat": ["cat", "kitten"], "dog": ["dog", "puppy"], "bird": ["bird", "parrot", "canary"],
           "fish": ["fish", "goldfish"], "rabbit": ["rabbit", "bunny"], "other": ["turtle", "hamster", "pony"]}
COLORS = ["black", "white", "brown", "grey", "orange", "golden", "spotted", "green", "yellow", "blue"]
KIDS = ["Mia", "Sam", "Lucy", "Jack", "Emma", "Leo", "Ella", "Noah", "Ava", "Finn", "Zoe", "Max", "Ruby", "Ollie",
        "Anna", "Ben", "Tim", "Sara", "Kai", "Lena", "Bo", "Ivy", "Rex", "Nina"]
PETNAMES = ["Biscuit", "Pepper", "Coco", "Sunny", "Patch", "Bubbles", "Shadow", "Ginger", "Pip", "Mango",
            "Daisy", "Rocky", "Luna", "Ziggy"]
LIKES = ["kites", "apples", "the sea", "drawing", "his blue truck", "her doll", "books about space", "snow",
         "cookies", "swimming", "the big slide", "music", "frogs", "painting rocks"]
PLACES = ["the library", "Oak Hall", "the school gym", "Lake Park", "the town square", "the beach", "City Hall",
          "Pine Hill", "the old barn", "the museum"]
EVENTS = ["summer picnic", "book sale", "school play", "dog show", "bake sale", "music night", "art fair",
          "garden party", "science fair", "harvest festival"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
GOODS = ["pencils", "lamps", "notebooks", "cups", "chairs", "umbrellas", "candles", "bags of rice", "plates",
         "hats", "towels", "batteries"]


def _json_character(rng):
    name, age, likes = rng.choice(KIDS), rng.randint(2, 90), rng.choice(LIKES)
    text = rng.choice(["{n} is {a} years old and loves {l}.", "At {a}, {n} liked {l} best of all.",
                       "There was a kid named {n}. {n} was {a} and really liked {l}.",
                       "{n}, aged {a}, could talk about {l} all day."]).format(n=name, a=age, l=likes)
    return text, {"name": name, "age": age, "likes": likes}


def _json_pet(rng):
    animal = rng.choice(list(ANIMALS))
    word, name, color = rng.choice(ANIMALS[animal]), rng.choice(PETNAMES), rng.choice(COLORS)
    text = rng.choice(["{n} is a {c} {w} that lives with us.", "Our {w} {n} is {c} and very friendly.",
                       "Everyone knew the {c} {w}. Its name was {n}."]).format(n=name, c=color, w=word)
    return text, {"animal": animal, "name": name, "color": color}


def _json_event(rng):
    title, place = rng.choice(EVENTS), rng.choice(PLACES)
    year, month, day = rng.randint(2020, 2030), rng.randint(1, 12), rng.randint(1, 28)
    text = rng.choice(["The {t} takes place at {p} on {d} {m} {y}.", "Come to the {t} on {m} {d}, {y}, at {p}!",
                       "On {d} {m} {y} there will be a {t} at {p}."]).format(
        t=title, p=place, d=day, m=MONTHS[month - 1], y=year)
    return text, {"title": title, "date": f"{year:04d}-{month:02d}-{day:02d}", "place": place}


def _json_order(rng):
    item, quantity, price = rng.choice(GOODS), rng.randint(1, 500), rng.choice([0.5, 1, 2.25, 3.5, 4, 7.99, 12, 15.5,
                                                                                20, 99.9])
    text = rng.choice(["Please send {q} {i} at {p} dollars each.", "I want to order {q} {i}; they cost {p} each.",
                       "Order: {q} {i}, unit price {p} dollars."]).format(q=quantity, i=item, p=price)
    return text, {"item": item, "quantity": quantity, "unit_price": price}


def _json_weather(rng):
    city, temp = rng.choice(CITIES), rng.randint(-20, 40)
    condition = rng.choice(["sunny", "cloudy", "rainy", "snowy", "windy", "foggy"])
    text = rng.choice(["In {c} it is {t} degrees and {w} today.", "{c} today: {w}, {t} degrees Celsius.",
                       "The weather in {c} is {w} with {t} degrees."]).format(c=city, t=temp, w=condition)
    return text, {"city": city, "temperature_c": temp, "condition": condition}


def _json_sentiment(rng):
    sentiment = rng.choice(["positive", "negative", "neutral"])
    question = rng.random() < 0.4
    pool = {"positive": ["I love this new {g}", "What a great {g}", "The {g} works perfectly"],
            "negative": ["This {g} broke after a day", "I hate how slow the {g} is", "The {g} is awful"],
            "neutral": ["The {g} arrived on Tuesday", "There is a {g} on the table", "Someone moved the {g}"]}
    text = rng.choice(pool[sentiment]).format(g=rng.choice(GOODS).rstrip("s"))
    if question:
        text = "Is it true that " + text[:1].lower() + text[1:] + "?"
    else:
        text += "."
    return text, {"sentiment": sentiment, "is_question": question}


def _json_names(rng):
    names = rng.sample(KIDS, rng.randint(1, 4))
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    text = rng.choice(["{j} went to the park together.", "At lunch {j} shared a table.",
                       "The prize went to {j}."]).format(j=joined)
    return text, {"names": names}


def _json_story(rng):
    hero, friend = rng.sample(KIDS, 2)
    happy = rng.random() < 0.6
    thing = rng.choice(["kite", "ball", "boat", "hat", "key", "map"])
    ending = "In the end they laughed and went home happy." if happy else "In the end the lost thing was never found."
    text = f"{hero} lost a {thing}. {hero}'s friend {friend} helped look for it. {ending}"
    title = f"The lost {thing}"
    return text, {"title": title, "characters": [{"name": hero, "role": "hero"}, {"name": friend, "role": "friend"}],
                  "happy_ending": happy}


JSON_MAKERS = {"character.json": _json_character, "pet.json": _json_pet, "event.json": _json_event,
               "order.json": _json_order, "weather.json": _json_weather, "sentiment.json": _json_sentiment,
               "names.json": _json_names, "story.json": _json_story}
FIELDS = {"city": ("string", CITIES), "color": ("string", COLORS), "count": ("integer", None),
          "owner": ("string", PEOPLE), "price": ("number", None), "open": ("boolean", None),
          "material": ("string", MATERIALS), "day": ("string", DAYS), "year": ("integer", None)}


def _json_random(rng) -> tuple[str, str, dict]:
    """An object of 1-4 fields of a random shape: breadth beyond the eight schemas."""
    keys = rng.sample(list(FIELDS), rng.randint(1, 4))
    record, parts = {}, []
    for key in keys:
        kind, pool = FIELDS[key]
        if kind == "integer":
            value = rng.randint(1, 2030 if key == "year" else 99)
        elif kind == "number":
            value = rng.choice([1.5, 2.75, 9.99, 14.0, 30.25])
        elif kind == "boolean":
            value = rng.random() < 0.5
        else:
            value = rng.choice(pool)
        record[key] = value
        parts.append(f"the {key} is {json.dumps(value) if kind == 'boolean' else value}")
    schema = {"type": "object", "properties": {k: {"type": FIELDS[k][0]} for k in keys}}
    text = capitalized("; ".join(parts)) + "."
    instruction = "Extract " + ", ".join(keys) + "."
    return EXTRACTION_PROMPT.format(instruction=instruction, text=text, shape=shape(schema)), "", record


def json_items(rng: random.Random, count: int, held_texts: set[str]) -> list[dict]:
    """Extraction prompts in the format layer's exact prompt, with the answer as compact JSON."""
    folder = get_settings().data_dir / "format"
    schemas = {name: json.loads((folder / "schemas" / name).read_text()) for name in JSON_MAKERS}
    instructions = {}
    for line in (folder / "extraction.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            instructions[row["schema"]] = row["instruction"]
    items = []
    while len(items) < count:
        if rng.random() < 0.25:
            prompt, _, record = _json_random(rng)
        else:
            name = rng.choice(list(JSON_MAKERS))
            text, record = JSON_MAKERS[name](rng)
            if text in held_texts:
                continue
            prompt = EXTRACTION_PROMPT.format(instruction=instructions[name], text=text, shape=shape(schemas[name]))
        items.append({"part": "json", "prompt": CHAT.format(prompt=prompt), "answer": json.dumps(record)})
    return items
