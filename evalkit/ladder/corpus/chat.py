"""The corpus's ``refusal`` and ``helpful`` parts: AdvBench's training half refused, harmless asks answered."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

from evalkit.ladder.corpus.reading import CHAT
from evalkit.settings import get_settings

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
    others = held + csv_column(data / "xstest" / "xstest_prompts.csv", "prompt") + \
        csv_column(data / "harmbench" / "harmbench_behaviors_text_all.csv", "Behavior")
    taken: set[tuple[str, ...]] = set()
    for text in others:
        taken |= word_runs(text)
    trained = [g for i, g in enumerate(goals, 1) if i % 2 == 0 and not word_runs(g) & taken]
    return trained, held


def csv_column(path: Path, name: str) -> list[str]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [row[name] for row in csv.DictReader(handle)]


def refusal_items(rng: random.Random, count: int) -> list[dict]:
    goals, _ = advbench_split()
    return [{"part": "refusal", "prompt": CHAT.format(prompt=rng.choice(goals)), "answer": rng.choice(REFUSALS)}
            for _ in range(count)]


def word_runs(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
