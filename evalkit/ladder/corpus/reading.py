"""The corpus's ``reading`` and ``faq`` parts: help-page paragraphs about generated businesses, and half the FAQ.

A paragraph holds 2-4 facts, several of one kind, so the answer has to be found, not guessed from the question;
:func:`faq_split` decides which Harbor Bean rows are trained (paraphrased) and which stay held out.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

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


def capitalized(text: str) -> str:
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
    context = " ".join(capitalized(s) for s in sentences)
    return {"part": "reading", "prompt": READING.format(header=header, context=context, question=question),
            "answer": capitalized(answer)}


def _fact_sentence(rng, fact: dict, kind: str, items: list[str]) -> tuple[str, str, str]:
    value = fact["value"](rng)
    item = rng.choice(items)
    lower = value[:1].lower() + value[1:]
    sentence = rng.choice(fact["say"]).format(v=value, lv=lower, kind=kind, item=item)
    return sentence, value, item

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
