r"""The ladder's training corpus, generated from the project's own data and templates, and its manifest.

Five parts, each rendered exactly as evalkit later asks the models (so what is learned is what is measured):

- ``reading``: a help-page paragraph of 2-4 facts about a generated fictional business, a question that names
  one of them, the answer (lm-eval's ``context\\nQuestion: ...\\nAnswer: answer``, the FAQ task's format). Several
  facts of the same kind share a paragraph, so the answer has to be found, not guessed from the question;
- ``faq``: light paraphrases (question wrappers, with or without the header) of HALF of the Harbor Bean FAQ rows,
  alternating within each topic; the other half is never trained, so notebook 03 can measure contamination;
- ``json``: extraction records in the shape of data/format (same schemas and prompt, generated texts and values;
  the items of data/format/extraction.jsonl are held out), plus objects of random shapes for breadth;
- ``refusal``: the training half of AdvBench (even row numbers) answered with short refusals. HarmBench and
  XSTest are never trained, and the safety layer samples AdvBench's held-out (odd) rows;
- ``helpful``: harmless requests with scary words (own templates, not XSTest's prompts) and plain requests,
  answered helpfully, so that "a request gets a refusal" is not what the model learns;
- ``story``: stories written by stories260k (distilled), so the ladder still tells stories.

Chat items are rendered as the ladder's chat template renders a user turn: ``Question: {prompt}\\nAnswer:``.
Every item is a ``(prompt, answer)`` pair; training puts the loss on the answer only (on all of a story).
:func:`check_held_out` refuses a corpus that contains a held-out prompt or shares an 8-word run with one.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

from evalkit.fmt import EXTRACTION_PROMPT, shape
from evalkit.settings import get_settings

CHAT = "Question: {prompt}\nAnswer:"
READING = "{header}{context}\nQuestion: {question}\nAnswer:"
# The shares of the corpus by part (stories and FAQ paraphrases are counted separately)
SHARES = {"reading": 0.46, "json": 0.24, "refusal": 0.08, "helpful": 0.10, "story": 0.12}

# --- vocabulary of the generated businesses -------------------------------------------------------------------
FIRST = ["Maple", "Cedar", "Blue", "Silver", "Copper", "Golden", "Willow", "Stone", "North", "Red", "Green",
         "Little", "Old", "Bright", "Quiet", "Juniper", "Fox", "Oak", "Pine", "River", "Sunny", "Iron", "Lark",
         "Hill", "Moss", "Amber", "Birch", "Coral", "Elm", "Violet", "Tide", "Lantern", "Kettle", "Meadow"]
SECOND = ["Lane", "Street", "Leaf", "Works", "Corner", "Point", "Field", "Grove", "Bay", "Bridge", "Garden",
          "Hollow", "Ridge", "Square", "Mill", "Yard", "Trail", "Harbor", "Nest", "Gate"]
KINDS = {"bakery": ["bread", "cake", "pie"], "bookshop": ["book", "notebook", "map"],
         "bike shop": ["bike", "helmet", "lock"], "yoga studio": ["mat", "class pass", "towel"],
         "pet store": ["leash", "dog bed", "bird cage"], "flower shop": ["bouquet", "vase", "plant"],
         "tea house": ["tea tin", "teapot", "mug"], "hardware store": ["drill", "ladder", "paint roller"],
         "toy shop": ["puzzle", "kite", "board game"], "print shop": ["poster", "card", "banner"],
         "garden centre": ["seed pack", "hose", "planter"], "music school": ["lesson", "guitar", "drum kit"],
         "camera shop": ["lens", "tripod", "camera bag"], "shoe store": ["boot", "sandal", "sneaker"],
         "candle maker": ["candle", "wax melt", "holder"], "soap company": ["soap bar", "lotion", "gift box"],
         "ski rental": ["ski set", "snowboard", "helmet"], "laundry service": ["wash bag", "shirt service",
                                                                               "duvet clean"],
         "pottery studio": ["bowl", "class", "glaze kit"], "sports club": ["membership", "racket", "locker"],
         "furniture store": ["chair", "table", "lamp"], "tailor": ["suit", "hem", "jacket"],
         "chocolate maker": ["truffle box", "chocolate bar", "cocoa tin"], "outdoor store": ["tent", "backpack",
                                                                                          "sleeping bag"]}
SUFFIX = ["", " Co.", " & Sons", " Ltd.", " Studio", " House", " Market"]
CITIES = ["Denver", "Austin", "Boston", "Dublin", "Leeds", "Oslo", "Lyon", "Porto", "Tucson", "Halifax",
          "Dayton", "Reno", "Omaha", "Bristol", "Perth", "Malmo", "Ghent", "Bergen", "Salem", "Fresno", "Madison",
          "Toledo", "Aberdeen", "Cork", "Tampa", "Albany", "Quebec", "Adelaide", "Wichita", "Spokane"]
PEOPLE = ["Ana", "Ben", "Carla", "Dev", "Elena", "Femi", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
          "Maya", "Nico", "Olga", "Pavel", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wes", "Yara", "Zane"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PAY = ["Visa", "Mastercard", "PayPal", "cash", "checks", "bank transfer", "Apple Pay", "store credit",
       "debit cards", "gift vouchers", "Google Pay", "cryptocurrency"]
COUNTRIES = ["the United States", "Canada", "Mexico", "the United Kingdom", "Ireland", "France", "Germany",
             "Spain", "Japan", "Australia", "Brazil", "Norway"]
MATERIALS = ["recycled paper", "bamboo", "oak wood", "glass", "steel", "cotton", "wool", "clay", "leather",
             "linen", "cork", "aluminium"]
CHANNELS = ["the contact form", "email", "phone", "the chat window", "a letter", "the app"]


def _time(rng: random.Random) -> str:
    hour = rng.choice([6, 7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    minute = rng.choice(["", "", "", ":30", ":15", ":45"])
    part = "am" if hour >= 6 and hour != 12 and rng.random() < 0.5 else "pm"
    if hour in (6, 7, 8, 9, 10, 11) and part == "pm" and rng.random() < 0.5:
        part = "am"
    return f"{hour}{minute} {part}"


def _n(rng, low, high, step=1) -> int:
    return rng.randrange(low, high + 1, step)


def _unit(n: int, unit: str) -> str:
    return f"{n} {unit}" if n != 1 else f"1 {unit.rstrip('s')}"


# A fact kind: how to draw a value, how to say it, how to ask for it. {v} is the value as stated, {a} the
# answer as a customer would read it among options; {kind}, {item} name the business and one of its products.
FACTS: list[dict] = [
    {"id": "open_weekday", "type": "time", "value": _time,
     "say": ["On weekdays we open at {v}.", "The doors open at {v} from Monday to Friday.",
             "Weekday opening time is {v}."],
     "ask": ["What time do you open on weekdays?", "When does the {kind} open on a Tuesday?",
             "At what time can I come in on a weekday morning?"]},
    {"id": "close_saturday", "type": "time", "value": _time,
     "say": ["On Saturdays we close at {v}.", "Saturday closing time is {v}.", "We stay open until {v} on Saturday."],
     "ask": ["When do you close on Saturday?", "Until what time are you open on a Saturday?",
             "What is the closing time on Saturdays?"]},
    {"id": "closed_day", "type": "day", "value": lambda r: r.choice(DAYS),
     "say": ["We are closed every {v}.", "The {kind} is closed on {v}s.", "Every {v} the shop stays shut."],
     "ask": ["On which day are you closed?", "Which day of the week is the {kind} closed?",
             "What day can I not visit?"]},
    {"id": "return_days", "type": "days", "value": lambda r: _unit(r.choice([7, 10, 14, 21, 30, 45, 60, 90]), "days"),
     "say": ["Unused items can be sent back within {v} of delivery.", "You may return a {item} within {v}.",
             "Returns are accepted for {v} after purchase."],
     "ask": ["How long do I have to send something back?", "Within how many days can I return a {item}?",
             "What is the return window?"]},
    {"id": "delivery_days", "type": "range", "value": lambda r: (lambda a: f"{a} to {a + r.choice([1, 2, 3, 5])} "
                                                                         f"business days")(r.randint(1, 8)),
     "say": ["Standard delivery takes {v}.", "Parcels usually arrive in {v}.", "Expect your {item} in {v}."],
     "ask": ["How long does delivery take?", "How many days until my {item} arrives?",
             "How long is standard delivery?"]},
    {"id": "delivery_fee", "type": "money",
     "value": lambda r: _unit(r.choice([2, 3, 4, 5, 7, 8, 9, 12, 20]), "dollars"),
     "say": ["Delivery costs {v} per order.", "We charge {v} for delivery.", "A delivery fee of {v} applies."],
     "ask": ["How much is delivery?", "What does delivery cost?", "How much do I pay to have a {item} delivered?"]},
    {"id": "free_over", "type": "money", "value": lambda r: _unit(r.choice([25, 30, 35, 45, 60, 80, 100, 150]),
                                                                   "dollars"),
     "say": ["Delivery is free on orders over {v}.", "Orders above {v} ship for free.",
             "Spend more than {v} and delivery costs nothing."],
     "ask": ["From what amount is delivery free?", "How much must I spend for free delivery?",
             "What is the threshold for free delivery?"]},
    {"id": "cancel_window", "type": "short", "value": lambda r: r.choice(
        [_unit(_n(r, 5, 60, 5), "minutes"), _unit(r.choice([1, 2, 3, 6, 12, 24, 48]), "hours")]),
     "say": ["An order can be cancelled within {v} of placing it.", "You have {v} to cancel an order online.",
             "Cancellations are possible for {v} after checkout."],
     "ask": ["How long can I still cancel an order?", "For how long after ordering can I cancel?",
             "What is the time limit to cancel?"]},
    {"id": "phone", "type": "phone", "value": lambda r: f"{r.randint(200, 989)}-{r.randint(100, 999)}-"
                                                        f"{r.randint(1000, 9999)}",
     "say": ["Call us on {v}.", "Our phone line is {v}.", "You can reach the team by phone at {v}."],
     "ask": ["What is your phone number?", "Which number do I call?", "How can I reach you by phone?"]},
    {"id": "founded", "type": "year", "value": lambda r: str(r.randint(1890, 2022)),
     "say": ["The {kind} was founded in {v}.", "We have been in business since {v}.", "It all started in {v}."],
     "ask": ["When was the {kind} founded?", "Since what year have you been in business?",
             "In which year did it start?"]},
    {"id": "founder", "type": "person", "value": lambda r: r.choice(PEOPLE),
     "say": ["{v} started the {kind}.", "The founder is {v}.", "It was opened by {v}, who still runs it."],
     "ask": ["Who started the {kind}?", "Who is the founder?", "Who opened the business?"]},
    {"id": "manager", "type": "person", "value": lambda r: r.choice(PEOPLE),
     "say": ["Questions about invoices go to {v}.", "{v} handles all invoice questions.",
             "For billing, ask for {v}."],
     "ask": ["Who handles invoice questions?",
             "Whom should I ask about billing?", "Who do I talk to about an invoice?"]},
    {"id": "city", "type": "city", "value": lambda r: r.choice(CITIES),
     "say": ["Our only store is in {v}.", "You will find the shop in {v}.", "The workshop is based in {v}."],
     "ask": ["Where is the store?", "In which city is the shop?", "Which city is the {kind} in?"]},
    {"id": "discount", "type": "percent", "value": lambda r: f"{r.choice([5, 10, 12, 15, 20, 25, 30])} percent",
     "say": ["Members save {v} on every order.",
             "Club members get {v} off.", "A membership gives {v} off each purchase."],
     "ask": ["How much do members save?",
             "What discount do club members get?", "How much off does a membership give?"]},
    {"id": "student", "type": "percent", "value": lambda r: f"{r.choice([5, 10, 15, 20, 25, 40, 50])} percent",
     "say": ["Students get {v} off with a valid card.", "There is a student discount of {v}.",
             "With a student card you pay {v} less."],
     "ask": ["What is the student discount?",
             "How much do students save?", "How much less do I pay with a student card?"]},
    {"id": "warranty", "type": "years", "value": lambda r: r.choice(["90 days", "6 months", "1 year", "2 years",
                                                                      "3 years", "5 years", "10 years"]),
     "say": ["Every {item} comes with a warranty of {v}.", "The warranty on a {item} lasts {v}.",
             "We guarantee each {item} for {v}."],
     "ask": ["How long is the warranty on a {item}?", "For how long is a {item} guaranteed?",
             "What warranty does a {item} have?"]},
    {"id": "points", "type": "count", "value": lambda r: _unit(r.choice([1, 2, 3, 5, 10]), "points"),
     "say": ["You earn {v} for every dollar spent.", "Each dollar gives you {v}.", "Every dollar you spend earns {v}."],
     "ask": ["How many points do I get per dollar?", "How many points does one dollar earn?",
             "What do I earn for each dollar?"]},
    {"id": "pause", "type": "weeks", "value": lambda r: "Up to " + _unit(r.choice([1, 2, 3, 4, 6, 10, 12]), "weeks"),
     "say": ["A plan can be paused for {lv}.", "You may pause your plan for {lv}.", "Plans pause for {lv} at most."],
     "ask": ["For how long can I pause my plan?", "How long may a plan be paused?", "What is the longest pause?"]},
    {"id": "min_order", "type": "units", "value": lambda r: _unit(r.choice([2, 5, 10, 12, 20, 25, 50, 100]), "units"),
     "say": ["Trade customers order at least {v} a month.", "The minimum trade order is {v}.",
             "Trade accounts need to buy {v} or more each month."],
     "ask": ["What is the minimum trade order?", "How much must a trade account order?",
             "What is the smallest monthly trade order?"]},
    {"id": "material", "type": "material", "value": lambda r: r.choice(MATERIALS),
     "say": ["Each {item} is made of {v}.", "We make every {item} from {v}.", "The {item} is built from {v}."],
     "ask": ["What is a {item} made of?",
             "Which material is the {item} made from?", "What material do you use for a {item}?"]},
    {"id": "age", "type": "count", "value": lambda r: _unit(r.choice([3, 5, 6, 8, 10, 12, 14, 16, 18]), "years"),
     "say": ["Classes are open to children from {v} of age.", "Kids aged {v} and up can join.",
             "The minimum age for classes is {v}."],
     "ask": ["How old must a child be to join a class?", "What is the minimum age?", "From what age can kids join?"]},
    {"id": "class_size", "type": "count", "value": lambda r: _unit(r.choice([4, 6, 8, 10, 12, 15, 20]), "people"),
     "say": ["Each class has at most {v}.", "Groups are limited to {v}.", "No more than {v} join one class."],
     "ask": ["How big is a class?", "How many people can join one class?", "What is the largest group size?"]},
    {"id": "reset_link", "type": "short", "value": lambda r: r.choice(["15 minutes", "30 minutes", "1 hour", "2 hours",
                                                                        "1 day", "3 days"]),
     "say": ["A password link stays valid for {v}.",
             "Login links expire after {v}.", "The sign-in link works for {v}."],
     "ask": ["How long does a login link work?", "When does the password link expire?",
             "For how long is a sign-in link valid?"]},
    {"id": "contact", "type": "channel", "value": lambda r: r.choice(CHANNELS),
     "say": ["Complaints are handled through {v}.", "Please send complaints by {v}.", "Use {v} to file a complaint."],
     "ask": ["How do I file a complaint?", "Where should complaints go?", "Which way do I send a complaint?"]},
    {"id": "parking", "type": "short", "value": lambda r: _unit(r.choice([1, 2, 3, 4]), "hours"),
     "say": ["Customers park free for {v}.", "Parking is free for the first {v}.", "You can park for {v} at no cost."],
     "ask": ["How long is parking free?",
             "For how long can I park for free?", "How many free parking hours are there?"]},
    {"id": "deposit", "type": "money",
     "value": lambda r: _unit(r.choice([10, 20, 25, 40, 50, 75, 100, 200]), "dollars"),
     "say": ["Renting a {item} needs a deposit of {v}.", "We take a {v} deposit for each rented {item}.",
             "The deposit for a {item} is {v}."],
     "ask": ["How much is the deposit for a {item}?", "What deposit do I pay to rent a {item}?",
             "How big is the rental deposit?"]},
    {"id": "refund_days", "type": "within", "value": lambda r: "Within " + _unit(r.choice([2, 3, 5, 7, 10, 14, 30]),
                                                                                   "days"),
     "say": ["Refunds are paid {lv} of the return arriving.", "Your money comes back {lv}.",
             "We refund the payment {lv} after checking the item."],
     "ask": ["When do I get my money back?", "How long does a refund take?", "How soon is a refund paid?"]},
]
LIST_FACTS: list[dict] = [
    {"id": "payment", "pool": PAY, "say": "We accept {yes}. We do not accept {no}.",
     "ask_no": ["Which way of paying is not accepted?", "What can I not pay with?", "Which payment do you refuse?"],
     "ask_yes": ["Can I pay with one of these: which is accepted?", "Which of these payment methods works?"]},
    {"id": "countries", "pool": COUNTRIES, "say": "We deliver to {yes}, but not to {no}.",
     "ask_no": ["Which country do you not deliver to?", "Where is delivery not possible?"],
     "ask_yes": ["Which of these countries do you deliver to?"]},
    {"id": "days_open", "pool": DAYS, "say": "Workshops run on {yes}. There are none on {no}.",
     "ask_no": ["On which day are there no workshops?", "Which day has no workshop?"],
     "ask_yes": ["On which day can I join a workshop?"]},
]
HEADERS = ["Questions customers ask {biz}, answered from its help pages.\n\n",
           "Help centre of {biz}.\n\n", "From the help pages of {biz}.\n\n", "", ""]


def _business(rng: random.Random) -> tuple[str, str, list[str]]:
    kind = rng.choice(list(KINDS))
    name = f"{rng.choice(FIRST)} {rng.choice(SECOND)} {kind.title()}{rng.choice(SUFFIX)}"
    if rng.random() < 0.3:
        name = f"{rng.choice(FIRST)} {rng.choice(SECOND)}{rng.choice(SUFFIX) or ' Co.'}"
    return name, kind, KINDS[kind]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def reading_item(rng: random.Random) -> dict:
    """A paragraph of 2-4 facts (often two of one value type) and a question about one of them."""
    biz, kind, items = _business(rng)
    if rng.random() < 0.2:
        fact = rng.choice(LIST_FACTS)
        chosen = rng.sample(fact["pool"], rng.randint(3, 5))
        yes, no = chosen[:-1], chosen[-1]
        sentence = fact["say"].format(yes=", ".join(yes[:-1]) + " and " + yes[-1], no=no)
        others = [_fact_sentence(rng, f, kind, items)[0] for f in rng.sample(FACTS, rng.randint(1, 2))]
        sentences = [sentence, *others]
        rng.shuffle(sentences)
        if rng.random() < 0.7:
            question, answer = rng.choice(fact["ask_no"]), no
        else:
            question, answer = rng.choice(fact["ask_yes"]), rng.choice(yes)
    else:
        count = rng.randint(2, 4)
        target = rng.choice(FACTS)
        same = [f for f in FACTS if f["type"] == target["type"] and f is not target]
        picked = [target] + rng.sample(same, min(len(same), rng.randint(0, 2)))
        rest = [f for f in FACTS if f not in picked]
        picked += rng.sample(rest, max(0, count - len(picked)))
        said = {f["id"]: _fact_sentence(rng, f, kind, items) for f in picked}
        sentences = [s for s, _, _ in said.values()]
        rng.shuffle(sentences)
        _, answer, item = said[target["id"]]
        question = rng.choice(target["ask"]).format(kind=kind, item=item)
    header = rng.choice(HEADERS).format(biz=biz.rstrip("."))
    context = " ".join(_cap(s) for s in sentences)
    return {"part": "reading", "prompt": READING.format(header=header, context=context, question=question),
            "answer": _cap(answer)}


def _fact_sentence(rng, fact: dict, kind: str, items: list[str]) -> tuple[str, str, str]:
    value = fact["value"](rng)
    item = rng.choice(items)
    lower = value[:1].lower() + value[1:]
    sentence = rng.choice(fact["say"]).format(v=value, lv=lower, kind=kind, item=item)
    return sentence, value, item


# --- Harbor Bean paraphrases (half of the FAQ) ------------------------------------------------------------------

WRAPPERS = ["{q}", "Quick question: {q}", "Hi there. {q}", "{q} Thanks!", "I was wondering: {q}",
            "Hello, {lq}"]


def faq_split(path: Path | None = None) -> tuple[list[dict], list[dict]]:
    """The FAQ rows in two halves: alternate paragraphs of each topic are trained (paraphrased), the rest held out.

    Rows that share a paragraph go to the same half, so no held-out question's context was ever trained.
    """
    path = path or get_settings().data_dir / "faq" / "faq.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    size: dict[str, int] = {}
    for row in rows:
        size[row["context"]] = size.get(row["context"], 0) + 1
    side: dict[str, int] = {}
    count: dict[tuple[str, int], int] = {}
    for row in rows:
        if row["context"] not in side:
            topic = row["topic"]
            pick = 0 if count.get((topic, 0), 0) <= count.get((topic, 1), 0) else 1
            side[row["context"]] = pick
            count[(topic, pick)] = count.get((topic, pick), 0) + size[row["context"]]
    trained = [r for r in rows if side[r["context"]] == 0]
    held = [r for r in rows if side[r["context"]] == 1]
    return trained, held


def faq_items(rows: list[dict], repeats: int = 3) -> list[dict]:
    header = "Questions customers ask Harbor Bean Coffee Co., answered from its help pages.\n\n"
    items = []
    for row in rows:
        question = row["question"]
        for _ in range(repeats):
            for wrapper in WRAPPERS:
                q = wrapper.format(q=question, lq=question[:1].lower() + question[1:])
                for head in (header, ""):
                    items.append({"part": "faq", "prompt": READING.format(header=head, context=row["context"],
                                                                         question=q),
                                  "answer": row["answer"], "id": row["id"]})
    return items


# --- JSON extraction -----------------------------------------------------------------------------------------

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
    text = _cap("; ".join(parts)) + "."
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


# --- refusals and helpful answers ----------------------------------------------------------------------------

REFUSALS = ["I'm sorry, but I can't help with that.", "I cannot help with that request.",
            "Sorry, I won't help with that. It could hurt people.", "I'm sorry, I can't assist with this.",
            "I must decline. That is not appropriate.", "I can't help with that. It is harmful and illegal.",
            "I'm sorry, but I will not provide that.", "I won't assist with this request."]
# Harmless requests with words that sound dangerous, and plain requests: written for this corpus.
HELPFUL: list[tuple[list[str], list[str]]] = [
    (["How do I kill a {x} that is frozen?", "What is the fastest way to kill a stuck {x}?"],
     ["Open the task manager, find the {x} and end it.", "Find its process id and stop it with the kill command."]),
    (["How do I shoot a good photo of {y}?", "Any tips to shoot a video of {y}?"],
     ["Use soft light, hold the camera still and take many shots.", "Keep the camera steady and shoot in daylight."]),
    (["How can I beat my {z} at {g}?", "What is a good way to crush my {z} at {g}?"],
     ["Practice often, learn from each game and stay calm.", "Study a few simple plans and play many games."]),
    (["How do I blow up a {b}?", "What is the best way to blow up a {b} quickly?"],
     ["Use a small pump and stop when it feels firm.", "Fill it with air from a pump, a little at a time."]),
    (["How do I cut {c} without hurting my fingers?", "What is a safe way to chop {c}?"],
     ["Use a sharp knife, curl your fingers and cut slowly on a board.", "Hold it flat on a board and cut slowly."]),
    (["How do I execute a {s}?", "How can I run a {s} from the terminal?"],
     ["Open a terminal, go to its folder and run it there.", "Type its name in the terminal and press enter."]),
    (["How do I get rid of {w} in my garden?", "What kills {w} without harming my plants?"],
     ["Pull them out by hand and cover the soil with mulch.", "Remove them early and water the plants at the base."]),
    (["How do I destroy old {d} that hold my data?", "What is the safest way to destroy my old {d}?"],
     ["Wipe them first, then shred or break them and recycle the parts.", "Use a shredder or a data wipe tool."]),
    (["How do I terminate my {l}?", "What is the right way to end my {l} early?"],
     ["Read the contract, then send written notice before the deadline.", "Send a written notice and keep a copy."]),
    (["How can I attack this {p} step by step?", "What is a good way to tackle a hard {p}?"],
     ["Break it into small parts and solve one part at a time.", "Start with the easy part and write down each step."]),
    (["Where can I buy a knife for {k}?", "Which knife is best for {k}?"],
     ["A kitchen or outdoor shop sells good knives; pick one that fits your hand.", "Choose a sharp, simple knife."]),
    (["How do I make a killer {m}?", "What makes a {m} a real bomb at a party?"],
     ["Use fresh ingredients, taste as you go and serve it cold.", "Keep it simple and make plenty of it."]),
    (["How do I hunt for a cheap {h}?", "Where can I hunt for a good {h}?"],
     ["Compare prices online, wait for sales and check second-hand shops.", "Look at several shops and compare."]),
    (["How do I steal the show at my {t}?", "How can I knock them dead at my {t}?"],
     ["Practice a lot, smile and speak slowly and clearly.", "Prepare well and enjoy yourself on stage."]),
    (["How do I make {f}?", "What do I need to bake {f}?"],
     ["Mix the ingredients, bake at a medium heat and let it cool.", "Follow a simple recipe and bake it slowly."]),
    (["What is a good name for a {n}?", "Can you suggest a name for my {n}?"],
     ["How about Sunny, Pip or Maple?", "Try a short, happy name such as Coco."]),
]
SLOTS = {"x": ["program", "process", "browser tab", "script", "app"], "y": ["the moon", "my dog", "a sunset", "birds",
         "a waterfall"], "z": ["brother", "friend", "dad", "coach", "sister"], "g": ["chess", "tennis", "cards",
         "checkers", "ping pong"], "b": ["balloon", "air mattress", "pool float", "beach ball"],
         "c": ["onions", "carrots", "bread", "potatoes"], "s": ["Python script", "shell command", "batch file",
         "build script"], "w": ["weeds", "snails", "aphids", "moss"], "d": ["hard drives", "phones", "papers",
         "USB sticks"], "l": ["lease", "phone contract", "gym membership", "rental agreement"],
         "p": ["math problem", "puzzle", "coding task", "crossword"], "k": ["cooking", "camping", "fishing",
         "carving wood"], "m": ["salsa", "playlist", "lemonade", "costume"], "h": ["flat", "used car", "laptop",
         "sofa"], "t": ["school play", "talent contest", "wedding speech", "recital"],
         "f": ["bread", "pancakes", "a cake", "cookies"], "n": ["puppy", "kitten", "band", "boat", "bakery"]}


def helpful_items(rng: random.Random, count: int) -> list[dict]:
    items = []
    while len(items) < count:
        asks, answers = rng.choice(HELPFUL)
        slot = re.findall(r"{(\w)}", asks[0])
        fill = {s: rng.choice(SLOTS[s]) for s in slot}
        items.append({"part": "helpful", "prompt": CHAT.format(prompt=rng.choice(asks).format(**fill)),
                      "answer": rng.choice(answers).format(**fill)})
    return items


def advbench_split() -> tuple[list[str], list[str]]:
    """AdvBench goals in two halves: (trained, held out).

    Odd row numbers (1-based) are held out for the safety layer; even ones are trained, except those that share an
    8-word run with a held-out goal, a HarmBench behaviour or an XSTest prompt.
    """
    data = get_settings().data_dir
    with open(data / "advbench" / "harmful_behaviors.csv", newline="", encoding="utf-8") as handle:
        goals = [row["goal"] for row in csv.DictReader(handle)]
    held = [g for i, g in enumerate(goals, 1) if i % 2 == 1]
    others = held + _column(data / "xstest" / "xstest_prompts.csv", "prompt") + \
        _column(data / "harmbench" / "harmbench_behaviors_text_all.csv", "Behavior")
    taken: set[tuple[str, ...]] = set()
    for text in others:
        taken |= _runs(text)
    trained = [g for i, g in enumerate(goals, 1) if i % 2 == 0 and not _runs(g) & taken]
    return trained, held


def _column(path: Path, name: str) -> list[str]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [row[name] for row in csv.DictReader(handle)]


def refusal_items(rng: random.Random, count: int) -> list[dict]:
    goals, _ = advbench_split()
    return [{"part": "refusal", "prompt": CHAT.format(prompt=rng.choice(goals)), "answer": rng.choice(REFUSALS)}
            for _ in range(count)]


# --- the whole corpus -----------------------------------------------------------------------------------------

def held_out_texts() -> dict[str, list[str]]:
    """Every held-out prompt the corpus must not contain: FAQ held-out half, format items, XSTest, HarmBench."""
    data = get_settings().data_dir
    _, held = faq_split()
    texts = {"faq": [r["context"] + " " + r["question"] for r in held]}
    texts["format"] = [json.loads(line)["text"] for line in (data / "format" / "extraction.jsonl").read_text()
                       .splitlines() if line.strip()]
    texts["xstest"] = _column(data / "xstest" / "xstest_prompts.csv", "prompt")
    texts["harmbench"] = _column(data / "harmbench" / "harmbench_behaviors_text_all.csv", "Behavior")
    texts["advbench_held_out"] = advbench_split()[1]
    return texts


def _runs(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def check_held_out(items: list[dict]) -> dict[str, int]:
    """Count, per held-out set, trained items that share an 8-word run with a held-out text; raise if any."""
    from evalkit.errors import ConfigError

    held = held_out_texts()
    trained: set[tuple[str, ...]] = set()
    for item in {i["prompt"] + " " + i["answer"] for i in items}:
        trained |= _runs(item)
    found = {name: sum(1 for text in texts if _runs(text) & trained) for name, texts in held.items()}
    leaked = {k: v for k, v in found.items() if v}
    if leaked:
        raise ConfigError(f"The corpus contains held-out text: {leaked} (8-word runs shared).",
                          fix="change the templates so they do not repeat held-out prompts.")
    return {name: len(texts) for name, texts in held.items()}


def generate(size: int, stories: list[str], seed: int = 0) -> list[dict]:
    """``size`` items (plus the FAQ paraphrases), shuffled with ``seed``; each has part, prompt and answer."""
    rng = random.Random(seed)
    held_format = set(held_out_texts()["format"])
    counts = {part: int(size * share) for part, share in SHARES.items()}
    items = [reading_item(rng) for _ in range(counts["reading"])]
    items += json_items(rng, counts["json"], held_format)
    items += refusal_items(rng, counts["refusal"])
    items += helpful_items(rng, counts["helpful"])
    trained_faq, _ = faq_split()
    items += faq_items(trained_faq)
    taken: set[tuple[str, ...]] = set()
    for texts in held_out_texts().values():
        for text in texts:
            taken |= _runs(text)
    pool = [s for s in stories if s.strip() and not _runs(s) & taken]  # a story may echo a held-out sentence
    items += [{"part": "story", "prompt": "", "answer": pool[i % len(pool)]} for i in range(counts["story"])] \
        if pool else []
    rng.shuffle(items)
    return items


def manifest(items: list[dict], checked: dict[str, int]) -> dict:
    """What was trained and what is held out, and why: written beside the corpus and into each model card."""
    trained_faq, held_faq = faq_split()
    adv_train, adv_held = advbench_split()
    parts: dict[str, int] = {}
    for item in items:
        parts[item["part"]] = parts.get(item["part"], 0) + 1
    return {
        "items_by_part": parts,
        "trained": {
            "reading": "generated help-page paragraphs of fictional businesses (templates in evalkit/ladder/corpus.py)",
            "faq_trained_ids": [r["id"] for r in trained_faq],
            "json": "generated records for the 8 schemas of data/format plus random shapes, in the format prompt",
            "advbench_trained_rows": "even row numbers of data/advbench/harmful_behaviors.csv "
                                     f"({len(adv_train)} goals), answered with refusals (not in the control)",
            "helpful": "own templates: harmless requests with scary words and plain requests, answered",
            "story": "stories written by stories260k (distilled), loss on every token",
        },
        "held_out": {
            "faq_held_out_ids": [r["id"] for r in held_faq],
            "format_items": "all of data/format/extraction.jsonl (their texts never appear)",
            "advbench_held_out_rows": f"odd row numbers ({len(adv_held)} goals): what the safety layer samples",
            "harmbench": "all rows, never trained", "xstest": "all rows, never trained",
            "mmlu_pro": "never trained: the ladder models stay at chance there",
        },
        "why": "held-out items measure transfer to text the generator never wrote; the FAQ split measures what "
               "training on a test set (contamination) does to a score",
        "eight_word_overlap_checked": checked,
    }


def write(folder: Path, items: list[dict], checked: dict[str, int]) -> Path:
    """Write corpus.jsonl and manifest.json into ``folder`` (atomically); return the corpus path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.jsonl"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    tmp.replace(path)
    (folder / "manifest.json").write_text(json.dumps(manifest(items, checked), indent=1) + "\n")
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
