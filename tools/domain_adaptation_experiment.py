#!/usr/bin/env python3
"""The domain-adaptation experiment of README's Pretraining section.

A small T5 is pretrained from scratch with span corruption on general English (WordNet's glosses and usage
examples, Debian's `wordnet-base`), then continued on a distinct domain: the manual pages of section 1
(/usr/share/man/man1, the roff source with its macros stripped). A downstream domain task, naming the command
a manual page describes from its one-line summary ("command for: copy files and directories" -> "cp"), is then
fine-tuned from three starting points for the same steps:

  (a) general      the general model alone;
  (b) general+     the general model continued on more general text for as many steps as (c) got of domain
                   text (the control: is it the domain, or just more pretraining?);
  (c) adapted      the general model continued on the domain text.

Printed: the span-corruption loss on held-out domain text of each starting point, and the downstream validation
loss, token accuracy and exact match after fine-tuning, as a Markdown table.

Held out: 10% of the manual pages (by a hash of the command name). Their text is in no training corpus, and
the downstream task's validation pairs are their summaries; the NAME section (the summary itself) is removed
from every page of the domain corpus, so no model ever sees a validation pair, or a training pair's summary
next to its name, in pretraining.

    python3 tools/domain_adaptation_experiment.py [--t5 .build/release/t5] [--work /tmp/domain-adaptation]
        [--general-steps 2000] [--domain-steps 1000] [--finetune-steps 600] [--threads 2]

Stages whose output exists are skipped (delete WORK to start over).
"""

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_model_data import wordnet_sentences  # noqa: E402

MAN = Path("/usr/share/man")
SECTIONS = ("man1", "man3", "man5", "man7", "man8")
PREFIX = "manual page for: "

# Font and size escapes (\fB, \f[I], \s-1), named characters (\(em, \[aq]), and the other one-letter escapes
# that carry no text.
ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\s[+-]?\d"), ""),
    (re.compile(r"\\\((em|en)"), "-"),
    (re.compile(r"\\\((aq|cq)|\\\[aq\]"), "'"),
    (re.compile(r"\\\((lq|rq|dq)"), '"'),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\[&|^/,%:]"), ""),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\ "), " "),
    (re.compile(r"\\\*\(..|\\\*\[[^\]]*\]|\\\*."), ""),
]
TEXT_MACROS = {".B", ".I", ".BR", ".IR", ".RB", ".RI", ".BI", ".IB", ".SM", ".SB"}


def unroff(line):
    for pattern, replacement in ESCAPES:
        line = pattern.sub(replacement, line)
    return line.strip()


def read_page(path):
    """(name, summary, text): the NAME section's "name - summary" and the rest of the page as plain paragraphs,
    or None for pages that are not plain roff (.so links, mdoc, empty)."""
    try:
        raw = gzip.open(path, "rt", encoding="utf-8", errors="strict").read()
    except (UnicodeDecodeError, OSError, EOFError):
        return None
    if raw.startswith(".so ") or "\n.Dd" in raw or ".SH" not in raw:
        return None
    section, name_lines, paragraphs, current = None, [], [], []
    for line in raw.splitlines():
        if line.startswith((".", "'")):
            macro, _, rest = line.partition(" ")
            if macro in (".SH", ".SS"):
                section = unroff(rest.strip('"')).upper() if macro == ".SH" else section
                if current:
                    paragraphs.append(" ".join(current))
                    current = []
                continue
            if macro in (".PP", ".P", ".LP", ".TP", ".IP", ".br", ".sp"):
                if section == "NAME":
                    name_lines.append(None)  # the end of the first "name - summary" entry
                if current:
                    paragraphs.append(" ".join(current))
                    current = []
                if macro == ".IP" and rest:
                    current.append(unroff(rest.split('"')[1] if rest.startswith('"') else rest.split(" ")[0]))
                continue
            if macro in TEXT_MACROS and rest:
                text = unroff(rest.replace('"', ""))
            else:
                continue
        else:
            text = unroff(line)
        if not text:
            continue
        if section == "NAME":
            name_lines.append(text)
        elif section != "SYNOPSIS":
            current.append(text)
    if current:
        paragraphs.append(" ".join(current))
    # "bzip2, bunzip2 - a block-sorting file compressor": the first name, and the summary.
    match = re.match(r"^(.+?)\s+-+\s+(.+)$", " ".join(first_entry(name_lines)))
    if not match:
        return None
    name, summary = match.group(1).split(",")[0].strip(), match.group(2).strip().rstrip(".")
    text = "\n".join(p for p in paragraphs if len(p.split()) >= 4)
    if not text or not (3 <= len(summary) <= 120) or not re.fullmatch(r"[A-Za-z0-9_.+\-]{1,40}", name):
        return None
    return name, summary, text


def first_entry(lines):
    entry = []
    for line in lines:
        if line is None:
            if entry:
                break
        else:
            entry.append(line)
    return entry


def held_out(name):
    return hashlib.sha256(name.encode()).digest()[0] < 26  # 26 / 256: about 10% of the pages


def build_data(data):
    rng = random.Random(20261204)
    examples, glosses = wordnet_sentences()
    general = sorted(set(examples + glosses))
    rng.shuffle(general)
    cut = len(general) // 50
    (data / "general.valid.txt").write_text("\n".join(general[:cut]) + "\n")
    (data / "general.txt").write_text("\n".join(general[cut:]) + "\n")

    pages, seen = [], set()
    # Google's gcloud pages (google-cloud-cli, not in Debian's archive) happen to be installed here; left out.
    paths = sorted(path for section in SECTIONS for path in (MAN / section).glob("*.gz") if not path.name.startswith("gcloud"))
    for path in paths:
        page = read_page(path)
        if page and page[0] not in seen:
            seen.add(page[0])
            pages.append(page)
    rng.shuffle(pages)
    train_pages = [p for p in pages if not held_out(p[0])]
    valid_pages = [p for p in pages if held_out(p[0])]
    # Documents separated by a blank line; a page's paragraphs are one per line.
    (data / "domain.txt").write_text("\n\n".join(text for _, _, text in train_pages) + "\n")
    (data / "domain.valid.txt").write_text("\n\n".join(text for _, _, text in valid_pages) + "\n")
    for split, chosen in (("train", train_pages), ("valid", valid_pages[:400])):
        with open(data / f"commands.{split}.jsonl", "w") as f:
            for name, summary, _ in chosen:
                f.write(json.dumps({"input": summary, "target": name}) + "\n")
    stats = {"general_sentences": len(general), "pages": len(pages), "train_pages": len(train_pages),
             "valid_pages": len(valid_pages), "valid_pairs": min(400, len(valid_pages)),
             "domain_bytes": (data / "domain.txt").stat().st_size, "general_bytes": (data / "general.txt").stat().st_size}
    (data / "stats.json").write_text(json.dumps(stats, indent=1))
    return stats


def run(cmd):
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--t5", default=".build/release/t5")
    p.add_argument("--work", default="/tmp/domain-adaptation")
    p.add_argument("--general-steps", type=int, default=2000)
    p.add_argument("--domain-steps", type=int, default=1000)
    p.add_argument("--finetune-steps", type=int, default=600)
    p.add_argument("--threads", default="2")
    a = p.parse_args()
    work = Path(a.work)
    data = work / "data"
    if not (data / "stats.json").exists():
        data.mkdir(parents=True, exist_ok=True)
        print(json.dumps(build_data(data)), file=sys.stderr)
    stats = json.loads((data / "stats.json").read_text())

    t5 = a.t5
    common = ["--threads", a.threads, "--seed", "1", "--json", "--quiet"]
    # A tokenizer for both kinds of text, and a model smaller than the bundled one (d_model 128, 2 + 2 blocks,
    # 4 heads of 32, d_ff 512), so that every stage runs in minutes on 2 cores.
    tok = work / "tokenizer"
    if not (tok / "spiece.model").exists():
        subprocess.run([t5, "tokenizer", "train", "--text", str(data / "general.txt"), "--text", str(data / "domain.txt"),
                        "--vocab-size", "4000", "--config-like", "tiny", "--seed", "1", "--out", str(tok), "--quiet"], check=True)
        config = json.loads((tok / "config.json").read_text())
        config.update(d_model=128, d_kv=32, d_ff=512, num_layers=2, num_decoder_layers=2)
        (tok / "config.json").write_text(json.dumps(config))

    pretrain = ["--batch-size", "32", "--input-length", "64", "--optimizer", "adafactor", "--eval-every", "100000",
                "--save-every", "500", *common]
    general_valid = ["--valid-text", str(data / "general.valid.txt"), "--one-document-per-line"]
    domain_valid = ["--valid-text", str(data / "domain.valid.txt")]

    def pretrained(out, flags):
        """Runs one pretraining stage (resuming it when interrupted) and returns its summary."""
        path = work / out
        if (path / "summary.json").exists():
            return json.loads((path / "summary.json").read_text())
        resume = ["--resume"] if path.exists() else []
        s = run([t5, "pretrain", *flags, "--out", str(path), *resume, *pretrain])
        (path / "summary.json").write_text(json.dumps(s))
        return s

    pretrained("general", ["--model", str(tok), "--from-scratch", "--text", str(data / "general.txt"),
                           "--one-document-per-line", "--steps", str(a.general_steps), *general_valid])
    # (b) and (c) each start a new run (a new Adafactor schedule) from the general model's weights, for the same
    # steps: (b) another pass over the general text, (c) the domain text.
    pretrained("general-plus", ["--model", str(work / "general"), "--text", str(data / "general.txt"),
                                "--one-document-per-line", "--steps", str(a.domain_steps), *general_valid])
    pretrained("adapted", ["--model", str(work / "general"), "--text", str(data / "domain.txt"),
                           "--steps", str(a.domain_steps), *domain_valid])

    rows = []
    for label, start in (("(a) general", "general"), ("(b) general, continued on general text", "general-plus"),
                         ("(c) general, adapted to the manual pages", "adapted")):
        # The span-corruption loss of the starting point on held-out domain text: its evaluation after one
        # Adafactor step at a learning rate of 1e-12 (t5 refuses 0), which moves no weight measurably.
        probe = work / f"probe-{start}"
        if not (probe / "summary.json").exists():
            s = run([t5, "pretrain", "--model", str(work / start), "--text", str(data / "domain.valid.txt"),
                     "--out", str(probe), "--steps", "1", "--lr", "1e-12", "--optimizer", "adafactor",
                     "--batch-size", "32", "--input-length", "64", *domain_valid, *common])
            (probe / "summary.json").write_text(json.dumps(s))
        domain_loss = json.loads((probe / "summary.json").read_text())["eval_loss"]
        tuned = work / f"finetune-{start}"
        if not (tuned / "summary.json").exists():
            resume = ["--resume"] if tuned.exists() else []
            s = run([t5, "finetune", "--model", str(work / start), "--out", str(tuned), *resume,
                     "--train", f"{PREFIX}={data / 'commands.train.jsonl'}", "--valid", f"{PREFIX}={data / 'commands.valid.jsonl'}",
                     "--steps", str(a.finetune_steps), "--batch-size", "32", "--optimizer", "adafactor",
                     "--eval-every", "100000", "--eval-generate", "--max-target-tokens", "16", "--save-every", "500", *common])
            (tuned / "summary.json").write_text(json.dumps(s))
        s = json.loads((tuned / "summary.json").read_text())
        rows.append((label, domain_loss, s))

    print(f"data: {stats['general_sentences']:,} general sentences ({stats['general_bytes'] / 1e6:.1f} MB); "
          f"{stats['train_pages']:,} manual pages for adaptation ({stats['domain_bytes'] / 1e6:.1f} MB), "
          f"{stats['valid_pages']:,} held out; {stats['valid_pairs']} held-out command pairs")
    print("| starting point | held-out manual-page span-corruption loss | command task: validation loss | token accuracy | exact match |")
    print("|---|---|---|---|---|")
    for label, domain_loss, s in rows:
        print(f"| {label} | {domain_loss:.3f} | {s['eval_loss']:.3f} | {100 * s['eval_token_accuracy']:.1f}% | "
              f"{100 * s['eval_exact_match']:.1f}% |")


if __name__ == "__main__":
    main()
