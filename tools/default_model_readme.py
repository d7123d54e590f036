#!/usr/bin/env python3
"""Writes models/README.md for the bundled default model from what tools/make_default_model.sh left in WORK.

    python3 tools/default_model_readme.py --work /tmp/t5-default-model [--t5 .build/release/t5] [--out models/README.md]

Reads WORK/data/stats.json, WORK/eval.json (the held-out test split), WORK/eval-sample.json (its first 100
examples per task, the sample DefaultModelTests scores), WORK/times.jsonl, WORK/run/metrics.jsonl and
WORK/final/config.json, and runs `t5 generate` on the examples shown, so every output quoted is the model's.
"""

import argparse
import json
import os
import subprocess

TASKS = [
    ("en-es", "translate English to Spanish: ", "English sentences to Spanish"),
    ("es-en", "translate Spanish to English: ", "Spanish sentences to English"),
    ("en-de", "translate English to German: ", "English words and two-word phrases to German"),
]
EXAMPLES = [
    "translate English to Spanish: The house is wonderful.",
    "translate English to Spanish: A small boat that is used for fishing.",
    "translate Spanish to English: La casa es maravillosa.",
    "translate English to German: house",
    "translate English to German: water",
]
PHRASE = "translate English to German: small dog"  # quoted in "What it knows": phrases are its weak spot


def duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True)
    p.add_argument("--t5", default=".build/release/t5")
    p.add_argument("--out", default="models/README.md")
    p.add_argument("--card", default="models/default/README.md",
                   help="the model card shipped in the model directory (`t5 info` prints its first paragraph)")
    a = p.parse_args()
    w = a.work
    stats = json.load(open(f"{w}/data/stats.json"))
    test = json.load(open(f"{w}/eval.json"))
    sample = json.load(open(f"{w}/eval-sample.json"))
    config = json.load(open(f"{w}/final/config.json"))
    times = {}
    if os.path.exists(f"{w}/times.jsonl"):
        for line in open(f"{w}/times.jsonl"):
            record = json.loads(line)
            times[record["stage"]] = times.get(record["stage"], 0) + record["seconds"]
    records = [json.loads(line) for line in open(f"{w}/run/metrics.jsonl")]
    # A resumed run appends to metrics.jsonl and restarts elapsed_s; steps after the last checkpoint of an
    # interrupted segment are logged again when retrained. Time is the sum of the segments' ends (work lost to
    # interruptions included); curves and token counts keep each step's last record.
    training_seconds, previous = 0.0, None
    for r in records:
        if r["type"] == "train":
            if previous is not None and r["elapsed_s"] < previous:
                training_seconds += previous
            previous = r["elapsed_s"]
    training_seconds += previous or 0
    train = sorted({r["step"]: r for r in records if r["type"] == "train"}.values(), key=lambda r: r["step"])
    evals = sorted({r["step"]: r for r in records if r["type"] == "eval"}.values(), key=lambda r: r["step"])
    steps = train[-1]["step"]
    tokens = sum(r["input_tokens"] + r["target_tokens"] for r in train)
    size = os.path.getsize(f"{w}/final/model.safetensors")
    d, ff, heads, kv = config["d_model"], config["d_ff"], config["num_heads"], config["d_kv"]
    blocks = (config["num_layers"], config["num_decoder_layers"])
    parameters = size // 4  # fp32, tied embedding stored once

    outputs = subprocess.run([a.t5, "generate", "--model", f"{w}/final", "--json", "--quiet", *EXAMPLES],
                             check=True, capture_output=True, text=True).stdout.splitlines()
    shown = [(i, json.loads(o)["outputs"][0]["text"]) for i, o in zip(EXAMPLES, outputs)]
    phrase = subprocess.run([a.t5, "generate", "--model", f"{w}/final", "--quiet", PHRASE],
                            check=True, capture_output=True, text=True).stdout.strip()

    out = []
    add = out.append
    add("# The bundled default model (`models/default`)\n")
    add("`t5` ships one small model so that a first command gives a real answer with nothing downloaded. It was "
        "trained from scratch on a 2-core CPU by this project's own commands (`t5 tokenizer train`, `t5 finetune`), "
        "from text and a teacher that Debian packages, by one script: `tools/make_default_model.sh`. It does three "
        "things, each asked for by its prefix:\n")
    add("| prefix | task | teacher (where the answers come from) |")
    add("|---|---|---|")
    add("| `translate English to Spanish: ` | English sentences to Spanish | Apertium `eng-spa` (rule-based) |")
    add("| `translate Spanish to English: ` | Spanish sentences to English | Apertium `spa-eng` |")
    add("| `translate English to German: ` | English words and two-word phrases to one German headword | FreeDict `eng-deu`, checked against `deu-eng` |")
    add("")
    add("```sh")
    for i, o in shown:
        add(f"$ t5 generate \"{i}\"\n{o}")
    add("```\n")
    add("## What it knows, and what it does not\n")
    add("- **Its teacher's translations, not better ones.** The Spanish side of every pair is Apertium's output, so "
        "the model learns to imitate a rule-based engine, mistakes included (Apertium translates word by word and "
        "phrase by phrase: `A person who tends a flock of goats.` becomes `Una persona quién tiende un rebaño de "
        "cabras.`). It can be no better than Apertium, and the scores below measure agreement with Apertium, not "
        "translation quality. Spanish to English is Apertium's Spanish translated back by Apertium.")
    add("- **Dictionary English.** The sentences are WordNet's glosses and usage examples (3 to 24 words, one "
        "sentence each, ending with a full stop): definitions (`A small boat ...`), and short everyday sentences. "
        "Longer or differently styled text (news, dialogue, several sentences at once) is outside what it saw; it "
        "still answers, less well. It knows the vocabulary of those sentences and little else: names, numbers and "
        "rare words are often dropped or mangled.")
    add("- **German words, not German sentences.** The German task maps one English word or two-word phrase to "
        "FreeDict's first German headword (`house` -> `Haus`). Single frequent words are what it does best; "
        f"two-word phrases often come out as invented compounds (`small dog` gives `{phrase}`). It was never "
        "shown a German sentence, and a sentence after that prefix gets a word-by-word guess.")
    add("- **Nothing else.** Any other input (another prefix, a question, `summarize:`) still gets an answer, "
        "because a T5 always generates something, but that answer means nothing. For other tasks, fine-tune "
        "(`t5 finetune --model models/default ...`) or load a real checkpoint with `--model`.")
    add("")
    add("## Scores on held-out data\n")
    add(f"Each task's test split ({test['en-es']['examples']} examples per task, never trained on and never used "
        "to choose anything), greedy decoding with the shipped generation settings, scored by sacrebleu's corpus "
        "chrF (character n-grams up to 6, beta 2) and exact match against the teacher's answer "
        "(`python3 tools/default_model_eval.py --t5 .build/release/t5 --model models/default --data WORK/data --out eval.json`). "
        "The last two columns are the first 100 test examples of each task, the fixed sample in "
        "`Tests/Fixtures/default-model/` that `DefaultModelTests` translates and scores on every test run, "
        "asserting at least these figures minus 1 chrF point and 2 exact-match points.\n")
    add("| task | prefix | test examples | chrF | exact match | sample examples | sample chrF | sample exact match |")
    add("|---|---|---|---|---|---|---|---|")
    for name, prefix, _ in TASKS:
        t, s = test[name], sample[name]
        add(f"| {name} | `{prefix.strip()}` | {t['examples']} | {t['chrF']:.2f} | {t['exact_match']:.2f}% | "
            f"{s['examples']} | {s['chrF']:.2f} | {s['exact_match']:.2f}% |")
    add("")
    add("Five test examples of each task, with the model's output:\n")
    for name, prefix, _ in TASKS:
        add(f"- `{prefix.strip()}`")
        for e in test[name]["samples"]:
            mark = "=" if e["output"] == e["reference"] else "≠"
            add(f"  - {e['input']} → {e['output']} ({mark} {e['reference']})")
    add("")
    add("## The model\n")
    add(f"A T5 (v1.0 layout: ReLU feed-forward, tied embedding and head) with d_model {d}, d_ff {ff}, "
        f"{heads} heads of {kv}, {blocks[0]} encoder and {blocks[1]} decoder blocks, a SentencePiece unigram "
        f"vocabulary of {config['vocab_size'] - 100:,} pieces + 100 sentinels ({config['vocab_size']:,}), "
        f"{parameters / 1e6:.1f} M parameters stored in fp32: {size / 1e6:.1f} MB. That is under the 40 MB "
        "this repository allows a bundled model, so it ships exact (bf16 storage would halve the file and "
        "change every output a little; `t5 convert --weights bf16` does it for anyone who wants that). "
        "`generation_config.json` sets `max_new_tokens` 64 (no training target is longer), greedy.\n")
    add("## The data\n")
    add(f"`tools/default_model_data.py` (seed {stats['seed']}) builds it from Debian packages:\n")
    add(f"- {stats['english_sentences']:,} distinct English sentences from WordNet 3.0's usage examples and glosses "
        "(`wordnet-base`), 3-24 words of letters, digits and ordinary punctuation, each ending with a full stop "
        "(Apertium otherwise joins lines).")
    add(f"- Apertium (`apertium`, `apertium-eng-spa`) translates them; {stats['apertium_dropped_unknown']:,} pairs where it "
        "marked a word it did not know or could not generate (`*word`, `#word`, `@word`) are dropped. A third of "
        "the remaining sentences' Spanish is translated back (`spa-eng`) for the Spanish-to-English task (pairs "
        "with marks dropped again); the rest is English to Spanish, so no English sentence is in both tasks.")
    add("- FreeDict's English-German dictionary (`dict-freedict-eng-deu`) gives each frequent English word or two-word "
        "phrase (frequency in the WordNet sentences) its first German translation, kept only when the German-English "
        "dictionary (`dict-freedict-deu-eng`) translates that German back to the English headword.")
    add("")
    add("| task | train | validation | test |")
    add("|---|---|---|---|")
    for name, _, _ in TASKS:
        s = stats[name]
        add(f"| {name} | {s['train']:,} | {s['valid']:,} | {s['test']:,} |")
    add("")
    add("The validation and test splits are drawn before training data, by the seed; the tokenizer is trained "
        "on the training text only (`WORK/data/corpus.txt`).\n")
    add("## How it was made\n")
    add("```sh")
    add("tools/make_default_model.sh /tmp/t5-default-model")
    add("```\n")
    add("installs the Debian packages it needs, builds `t5` if needed, and runs, skipping every stage whose output "
        "exists (so an interrupted run continues; training resumes from its last checkpoint with `--resume`):\n")
    add("```sh")
    add("python3 tools/default_model_data.py WORK/data")
    add("t5 tokenizer train --text WORK/data/corpus.txt --vocab-size 8000 --config-like tiny --seed 1 --out WORK/tokenizer")
    add("t5 finetune --model WORK/tokenizer --from-scratch \\")
    for name, prefix, _ in TASKS:
        add(f"    --train '{prefix}=WORK/data/{name}.train.jsonl' --valid '{prefix}=WORK/data/{name}.valid.jsonl' \\")
    add(f"    --out WORK/run --steps {steps} --batch-size 32 --optimizer adafactor \\")
    add("    --eval-every 2000 --eval-generate --max-target-tokens 64 --save-every 500 --seed 1")
    add("python3 tools/default_model_eval.py ...   # the scores above, and the curves below")
    add("python3 tools/default_model_readme.py --work WORK   # this file")
    add("```\n")
    add(f"Adafactor in T5's relative-step mode (no `--lr`: the rate is min(1e-2, 1/sqrt(step)), scaled by each "
        f"parameter's RMS), batches of 32 pairs drawn from the three tasks in proportion to their sizes, dropout "
        f"0.1, {steps:,} steps ({tokens / 1e6:.1f} M tokens, about {steps * 32 / sum(stats[n]['train'] for n, _, _ in TASKS):.1f} "
        "passes over the training pairs). An earlier run with AdamW at 1e-3 (linear schedule, 500 warmup steps) "
        "plateaued at validation loss 5.0 after 6,000 steps, where this one was at "
        f"{next((e['loss'] for e in evals if e['step'] == 6000), float('nan')):.2f}.\n")
    add("Time on the machine that made it (AMD EPYC, 2 cores, AVX2 + FMA, 33 GB/s copy bandwidth), shared at times "
        "with builds and tests:\n")
    add("| stage | time |")
    add("|---|---|")
    for stage in ("data", "tokenizer"):
        add(f"| {stage} | {duration(times[stage]) if stage in times else 'not recorded (made before the script timed its stages)'} |")
    add(f"| training ({steps:,} steps, with {len(evals)} evaluations) | {duration(training_seconds)} |")
    if "evaluate" in times:
        add(f"| evaluation (test split, 3 × {test['en-es']['examples']} translations) | {duration(times['evaluate'])} |")
    add("")
    add("![training loss, validation loss and validation exact match against steps](training-curves.svg)\n")
    add("Validation during training (the validation split, greedy, exact match):\n")
    add("| step | loss | token accuracy | exact match | " + " | ".join(f"{n} exact" for n, _, _ in TASKS) + " |")
    add("|---|---|---|---|" + "---|" * len(TASKS))
    for e in evals:
        per = [e["tasks"].get(prefix.rstrip(": ").rstrip(), {}).get("exact_match") for _, prefix, _ in TASKS]
        add(f"| {e['step']:,} | {e['loss']:.3f} | {100 * e['token_accuracy']:.1f}% | {100 * e['exact_match']:.1f}% | "
            + " | ".join("—" if x is None else f"{100 * x:.1f}%" for x in per) + " |")
    add("")
    add("## Licences\n")
    add("The model's weights were computed from these sources; each one's notice follows. This project makes no "
        "claim over them beyond what these licences allow.\n")
    add("- **WordNet 3.0** (`wordnet-base`; the English sentences): Princeton University's WordNet licence, which "
        "asks that this notice appear on all copies:\n")
    add("  > WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.\n  >")
    add("  > THIS SOFTWARE AND DATABASE IS PROVIDED \"AS IS\" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR "
        "WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO "
        "REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF "
        "THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, "
        "TRADEMARKS OR OTHER RIGHTS.\n  >")
    add("  > The name of Princeton University or Princeton may not be used in advertising or publicity pertaining to "
        "distribution of the software and/or database. Title to copyright in this software, database and any "
        "associated documentation shall at all times remain with Princeton University and LICENSEE agrees to "
        "preserve same.\n")
    add("- **Apertium** and **apertium-eng-spa** (the Spanish and back-translated English targets): the engine is "
        "GPL-2.0-or-later, the English-Spanish language data GPL-2.0 (some files GPL-2.0-or-later), © Universitat "
        "d'Alacant and the Apertium Project Management Committee. Only Apertium's output was used, not its code "
        "or dictionaries.")
    add("- **FreeDict eng-deu / deu-eng** (`dict-freedict-eng-deu`, `dict-freedict-deu-eng`, from Frank Richter's "
        "Ding dictionary; © 1995-2022 Frank Richter, 2020-2022 Einhard Leichtfuß): GPL-3.0-or-later and "
        "AGPL-3.0, which apply to different parts of the combined work. The German targets are entries of this "
        "dictionary.")
    add("")
    add("Whether trained weights are a work derived from their training data is not settled law. If they are, the "
        "German task's GPL-3/AGPL-3 dictionary entries and the GPL-2-only Apertium language data (if Apertium's "
        "output counts as that data) cannot both be satisfied in one distribution. Anyone who redistributes "
        "`models/default` should keep this file with it and take that question to counsel; anyone who needs "
        "unencumbered weights can rerun the script without the German task (drop it from `TASKS` in "
        "`tools/make_default_model.sh`).")
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    with open(a.card, "w") as f:
        f.write("---\nlanguage: [en, es, de]\ntags: [t5, translation]\npipeline_tag: translation\n---\n\n"
                "# t5's bundled default model\n\n"
                "A small T5 trained by this project that translates English sentences to Spanish "
                "(`translate English to Spanish: `) and Spanish to English (`translate Spanish to English: `), "
                "imitating the rule-based Apertium, and English words and two-word phrases to German "
                "(`translate English to German: `) as FreeDict does. It knows nothing else: any other input "
                "gets an answer that means nothing. Scores, data, licences: models/README.md.\n")


if __name__ == "__main__":
    main()
