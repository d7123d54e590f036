#!/usr/bin/env python3
"""The bundled default model's data, from Debian-packaged text and a Debian-packaged teacher.

    python3 tools/default_model_data.py OUTDIR [--seed 20261204] [--held-out 400]

Tasks (each a JSON Lines file of {"input", "target"} without the prefix, which `t5 finetune --train
'PREFIX=FILE'` adds):

- `translate English to Spanish: ` -- English sentences from WordNet 3.0 (`wordnet-base`: its usage
  examples and its glosses), translated by Apertium (`apertium-eng-spa`), a rule-based engine: the
  model learns to imitate it (sequence-level knowledge distillation, Kim & Rush 2016), so it can be no
  better than Apertium.
- `translate Spanish to English: ` -- Apertium's Spanish for held-apart English sentences, translated
  back by Apertium (`spa-eng`), so the teacher is Apertium in this direction too.
- `translate English to German: ` -- FreeDict's English-German dictionary (`dict-freedict-eng-deu`,
  from Ding): frequent English words and two-word phrases to the headword translation (`house` -> `Haus`),
  kept only when FreeDict's German-English dictionary translates it back to the English headword.

Pairs where Apertium marks a word it does not know or cannot generate (`*word`, `#word`, `@word`) are
dropped, as are outputs whose line count or final stop does not match the input's. Every split is fixed by the seed; the held-out sentences' English never occurs in training.

Writes OUTDIR/{en-es,es-en,en-de}.{train,valid,test}.jsonl, OUTDIR/corpus.txt (the training text of every
task, for the tokenizer) and OUTDIR/stats.json.
"""

import argparse
import collections
import gzip
import json
import os
import random
import re
import subprocess

WORDNET = "/usr/share/wordnet"
FREEDICT = "/usr/share/dictd"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# A sentence worth translating: letters, digits, spaces and ordinary punctuation; 3-24 words.
CLEAN = re.compile(r"^[A-Za-z][A-Za-z0-9 ,;:'\-]*[A-Za-z0-9.!?]$")


def wordnet_sentences():
    """WordNet's usage examples ("the pilot reported two kills") and glosses, in file order."""
    examples, glosses = [], []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(WORDNET, f"data.{pos}"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # the licence header
                gloss = line.split("|", 1)[1].strip()
                for quoted in re.findall(r'"([^"]+)"', gloss):
                    examples.append(quoted.strip())
                definition = gloss.split(";")[0].strip()
                if not definition.startswith('"'):
                    glosses.append(definition)
    return examples, glosses


def clean(sentence):
    sentence = re.sub(r"\s+", " ", sentence).strip()
    words = sentence.split(" ")
    if not 3 <= len(words) <= 24 or not CLEAN.match(sentence):
        return None
    if "--" in sentence:
        return None
    # Glosses are lower-case phrases without a full stop. Apertium needs the stop: without it, transfer
    # joins a line's last words with the next line's (`... to the ministers` / `United States ...` came
    # out as `... al editor` / `de diario de Estados Unidos de ministros ...`).
    sentence = sentence[0].upper() + sentence[1:]
    return sentence if sentence[-1] in ".!?" else sentence + "."


def apertium(pair, lines):
    """Apertium over many lines at once; one output line per input line (each its own paragraph)."""
    text = "\n".join(line.replace("\n", " ") for line in lines) + "\n"
    out = subprocess.run(["apertium", pair], input=text, capture_output=True, text=True, check=True).stdout
    result = out.rstrip("\n").split("\n")
    if len(result) != len(lines):
        raise SystemExit(f"apertium {pair}: {len(lines)} lines in, {len(result)} out")
    return [re.sub(r"\s+", " ", r).strip() for r in result]


UNKNOWN = re.compile(r"(^|[\s\"'(¿¡])[*#@]\w")


def usable(source, translation):
    """A translation without unknown-word marks that ends as its source does (one sentence in, one out)."""
    return (bool(translation) and not UNKNOWN.search(" " + translation)
            and translation[-1] == source[-1] and translation.count(".") == source.count("."))


def translate_all(pair, lines, chunk=5000):
    out = []
    for start in range(0, len(lines), chunk):
        out.extend(apertium(pair, lines[start:start + chunk]))
    return out


def dict_entries(name):
    """(headword, definition text) of a dictd database, in index order."""
    def number(s):
        n = 0
        for c in s:
            n = n * 64 + B64.index(c)
        return n
    data = gzip.open(os.path.join(FREEDICT, f"{name}.dict.dz")).read()
    with open(os.path.join(FREEDICT, f"{name}.index"), encoding="utf-8") as f:
        for line in f:
            word, offset, length = line.rstrip("\n").split("\t")
            if word.startswith("00"):
                continue
            yield word, data[number(offset):number(offset) + number(length)].decode("utf-8")


def first_translation(body):
    """The first German rendering of a FreeDict sense: the line after the headword, before the first comma,
    without grammatical tags (<masc>) or domain labels ([techn.])."""
    lines = body.split("\n")
    if len(lines) < 2:
        return None
    german = lines[1].split(",")[0]
    german = re.sub(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}|\([^)]*\)", "", german).strip()
    if not german or not re.match(r"^[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß \-]*$", german) or len(german.split()) > 3:
        return None
    return german


def senses(body):
    """How common a sense looks: its example count, and whether it carries a domain label."""
    head_line = body.split("\n")[1] if "\n" in body else ""
    labelled = "[" in head_line
    examples = body.count('"  - ')
    return examples, labelled


def english_german(frequency, rng, limit):
    back = collections.defaultdict(set)
    for word, body in dict_entries("freedict-deu-eng"):
        lines = body.split("\n")
        if len(lines) > 1:
            for english in lines[1].split(","):
                english = re.sub(r"<[^>]*>|\[[^\]]*\]|\([^)]*\)", "", english).strip().lower()
                back[word.lower()].add(english)
    best = {}
    for word, body in dict_entries("freedict-eng-deu"):
        head = body.split("\n")[0].split(" /")[0].strip()
        if head != word or not re.match(r"^[a-z]+( [a-z]+)?$", head):
            continue
        if any(w not in frequency for w in head.split()):
            continue
        german = first_translation(body)
        if german is None or head not in back.get(german.lower(), ()):
            continue
        examples, labelled = senses(body)
        rank = (not labelled, examples)
        if head not in best or rank > best[head][0]:
            best[head] = (rank, german)
    ordered = sorted(best, key=lambda w: -min(frequency[x] for x in w.split()))
    return [(w, best[w][1]) for w in ordered[:limit]]


def write(path, pairs):
    with open(path, "w", encoding="utf-8") as f:
        for source, target in pairs:
            f.write(json.dumps({"input": source, "target": target}, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--held-out", type=int, default=400, help="validation and test examples per task, each")
    parser.add_argument("--words", type=int, default=12000, help="English-German entries in all")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)

    examples, glosses = wordnet_sentences()
    seen, english = set(), []
    for s in examples + glosses:
        c = clean(s)
        if c and c.lower() not in seen:
            seen.add(c.lower())
            english.append(c)
    rng.shuffle(english)
    spanish = translate_all("eng-spa", english)
    pairs = [(e, s) for e, s in zip(english, spanish) if usable(e, s)]
    dropped = len(english) - len(pairs)

    # Spanish -> English: a third of the sentences, Apertium's Spanish translated back by Apertium.
    n_back = len(pairs) // 3
    back_source = [s for _, s in pairs[:n_back]]
    back_target = translate_all("spa-eng", back_source)
    back_pairs = [(s, e) for s, e in zip(back_source, back_target) if usable(s, e)]
    forward_pairs = pairs[n_back:]

    frequency = collections.Counter(w.lower() for e in english for w in re.findall(r"[A-Za-z]+", e))
    words = english_german(frequency, rng, args.words)
    rng.shuffle(words)

    held = args.held_out
    stats = {"seed": args.seed, "english_sentences": len(english), "apertium_dropped_unknown": dropped}
    corpus = []
    for name, prefix, data in (("en-es", "translate English to Spanish: ", forward_pairs),
                               ("es-en", "translate Spanish to English: ", back_pairs),
                               ("en-de", "translate English to German: ", words)):
        valid, test, train = data[:held], data[held:2 * held], data[2 * held:]
        write(os.path.join(args.out, f"{name}.valid.jsonl"), valid)
        write(os.path.join(args.out, f"{name}.test.jsonl"), test)
        write(os.path.join(args.out, f"{name}.train.jsonl"), train)
        stats[name] = {"train": len(train), "valid": len(valid), "test": len(test)}
        for source, target in train:
            corpus.append(prefix + source)
            corpus.append(target)
    with open(os.path.join(args.out, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(corpus) + "\n")
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
