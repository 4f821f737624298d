"""Streaming readers for passage corpora: one :class:`Passage` at a time, never the whole file.

Three formats (``detect_format`` picks one from the file name and its first line):

- ``kilt``: the KILT knowledge source, one article per line:
  ``{"wikipedia_id", "wikipedia_title", "text": [paragraph, ...]}``. ``text[0]`` repeats the
  title and is dropped; ``Section::::`` headings are kept for indexing but never taken as
  the first paragraph. One passage per article (as the seed's ``wikipedia-kilt-doc`` index).
- ``dpr``: DPR's ``psgs_w100.tsv``: ``id<TAB>text<TAB>title`` after a header line (the header
  may order the columns differently; without one that order is assumed). Fields may be
  double-quoted with ``""`` escapes, as in the released file.
- ``jsonl``: ``{"id", "contents"}`` per line (pyserini / FlashRAG). ``contents`` follows the
  DPR convention ``"Title\\ntext"``: its first line is the title when it has more than one
  line. ``{"id", "title", "text"}`` lines are read as well.

Files ending in ``.gz`` are read through gzip. Lines are decoded one by one, so a line that is
not UTF-8, not JSON (or JSON nested too deeply for the parser), or lacks a field raises
:class:`CorpusError` naming ``file:line``; the caller decides whether to skip it (``on_error``)
or stop.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FORMATS = ("kilt", "dpr", "jsonl")

# KILT marks headings and list items inside ``text``; neither is a first paragraph.
_KILT_MARKERS = ("Section::::", "BULLET::::")


class CorpusError(ValueError):
    """A line of a corpus file that cannot be read as a passage."""

    def __init__(self, path: str | os.PathLike[str], line: int, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}:{line}: {reason}")


@dataclass(frozen=True)
class Passage:
    """One retrievable unit. ``paragraphs`` are the passage's text, title excluded."""

    id: str
    title: str
    paragraphs: tuple[str, ...]

    def index_text(self) -> str:
        """What BM25 sees: the title and every paragraph."""
        return "\n".join((self.title, *self.paragraphs)) if self.title else "\n".join(self.paragraphs)

    def first_paragraph(self) -> str:
        """The first paragraph that is prose (not a KILT heading or list marker); may be ''."""
        for para in self.paragraphs:
            if para and not para.startswith(_KILT_MARKERS):
                return para
        return ""


def _split_paragraphs(text: str) -> tuple[str, ...]:
    return tuple(p for p in (s.strip() for s in text.split("\n")) if p)


def _unquote_tsv(field: str) -> str:
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


def _open_binary(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def detect_format(path: str | os.PathLike[str], probe_lines: int = 100) -> str:
    """Guess the format from the extension, then from the first readable of ``probe_lines``
    lines (a broken first line should be reported with its line number, not stop the guess)."""
    p = Path(path)
    stem = p.name[:-3] if p.name.endswith(".gz") else p.name
    if stem.endswith(".tsv"):
        return "dpr"
    seen = 0
    with _open_binary(p) as f:
        for raw in itertools.islice(f, probe_lines):
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            seen += 1
            if not line.startswith("{"):
                if "\t" in line:
                    return "dpr"
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(row, dict) and "wikipedia_id" in row and isinstance(row.get("text"), list):
                return "kilt"
            if isinstance(row, dict) and ("contents" in row or "text" in row):
                return "jsonl"
    if seen == 0:
        raise ValueError(f"{p}: empty corpus file")
    return _unknown(p)


def _unknown(path: Path) -> str:
    raise ValueError(f"{path}: cannot tell the corpus format from its first lines; pass --format {'|'.join(FORMATS)}")


# ---------------------------------------------------------------- one line -> Passage


def _parse_kilt(line: str) -> Passage:
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    try:
        wid, title, text = row["wikipedia_id"], row["wikipedia_title"], row["text"]
    except KeyError as err:
        raise ValueError(f"missing field {err.args[0]!r} (KILT needs wikipedia_id, wikipedia_title, text)") from None
    if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
        raise ValueError("'text' must be a list of strings (paragraphs)")
    title = str(title).strip()
    paragraphs = [t.strip() for t in text]
    if paragraphs and paragraphs[0] == title:
        paragraphs = paragraphs[1:]
    return Passage(id=str(wid), title=title, paragraphs=tuple(p for p in paragraphs if p))


def _parse_jsonl(line: str) -> Passage:
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    if "id" not in row:
        raise ValueError("missing field 'id'")
    if "contents" in row:
        contents = row["contents"]
        if not isinstance(contents, str):
            raise ValueError("'contents' must be a string")
        if "title" in row:
            return Passage(id=str(row["id"]), title=str(row["title"]).strip(), paragraphs=_split_paragraphs(contents))
        head, sep, rest = contents.partition("\n")
        if sep:
            return Passage(id=str(row["id"]), title=head.strip().strip('"'), paragraphs=_split_paragraphs(rest))
        return Passage(id=str(row["id"]), title="", paragraphs=_split_paragraphs(contents))
    if "text" in row and isinstance(row["text"], str):
        return Passage(id=str(row["id"]), title=str(row.get("title", "")).strip(), paragraphs=_split_paragraphs(row["text"]))
    raise ValueError("missing field 'contents' (or 'text')")


class _DprParser:
    """Parses psgs_w100 lines; the header line (if any) fixes the column order."""

    def __init__(self) -> None:
        self.columns = {"id": 0, "text": 1, "title": 2}
        self.first = True

    def __call__(self, line: str) -> Passage | None:
        fields = line.rstrip("\r\n").split("\t")
        if self.first:
            self.first = False
            names = [f.strip().lower() for f in fields]
            if {"id", "text", "title"} <= set(names):
                self.columns = {n: names.index(n) for n in ("id", "text", "title")}
                return None
        if len(fields) != 3:
            raise ValueError(f"expected 3 tab-separated fields (id, text, title), got {len(fields)}")
        c = self.columns
        text = _unquote_tsv(fields[c["text"]])
        return Passage(id=fields[c["id"]].strip(), title=_unquote_tsv(fields[c["title"]]).strip(), paragraphs=_split_paragraphs(text))


# ---------------------------------------------------------------- the stream


def read_passages(
    path: str | os.PathLike[str],
    fmt: str = "auto",
    on_error: Callable[[CorpusError], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Passage]:
    """Yield the passages of ``path`` in file order.

    A bad line becomes a :class:`CorpusError`: passed to ``on_error`` when given (which may
    log it and return, to skip the line, or raise it, to stop), raised otherwise.
    ``on_bytes(n)`` is told how many bytes of the file each line took (for progress bars).
    """
    p = Path(path)
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown corpus format {fmt!r}; choose from auto, {', '.join(FORMATS)}")
    parse: Callable[[str], Passage | None] = {"kilt": _parse_kilt, "jsonl": _parse_jsonl, "dpr": _DprParser()}[fmt]
    with _open_binary(p) as f:
        raw_file = f.fileobj if isinstance(f, gzip.GzipFile) else None  # compressed position for progress
        last_pos = 0
        for lineno, raw in enumerate(f, start=1):
            if on_bytes is not None:
                if raw_file is not None:
                    pos = raw_file.tell()  # type: ignore[union-attr]
                    on_bytes(pos - last_pos)
                    last_pos = pos
                else:
                    on_bytes(len(raw))
            if not raw.strip():
                continue
            try:
                passage = parse(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as err:
                # json.JSONDecodeError is a ValueError; the reason keeps its column.
                if isinstance(err, json.JSONDecodeError):
                    reason = f"invalid JSON at column {err.colno}: {err.msg}"
                elif isinstance(err, RecursionError):
                    reason = "JSON nested too deeply to read"
                else:
                    reason = f"{type(err).__name__}: {err}"
                error = CorpusError(p, lineno, reason)
                if on_error is None:
                    raise error from err
                on_error(error)
                continue
            if passage is not None:
                yield passage


def corpus_size(path: str | os.PathLike[str]) -> int:
    """Bytes on disk (the progress bar's total; compressed bytes for ``.gz``)."""
    return os.path.getsize(path)


__all__ = ["FORMATS", "CorpusError", "Passage", "corpus_size", "detect_format", "read_passages"]
