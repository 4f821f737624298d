"""The search tool: corpus readers, the streaming bm25s index build, WikiSearch, the CLI and the Ray pool."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest

from orchestrator.tools.base import ToolError, call_batch
from orchestrator.tools.search import (
    BuildSettings,
    CorpusError,
    IndexTargetError,
    PartialIndexError,
    SearchIndex,
    WikiSearch,
    build_index,
    ensure_index,
    pool_prefix,
    read_passages,
)
from orchestrator.tools.search import index as index_module
from orchestrator.tools.search.corpus import detect_format
from orchestrator.tools.search.index import read_manifest, stale_reason

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    for candidate in (os.environ.get("TOOLRL_SHARED_DATA"), REPO.parent / "shared" / "data", "/work/shared/data"):
        if candidate and (Path(candidate) / "mini_wiki_corpus.jsonl").is_file():
            return Path(candidate)
    return None


SHARED = _shared_data()
needs_mini = pytest.mark.skipif(SHARED is None, reason="shared/data/mini_wiki_corpus.jsonl not found")


@pytest.fixture(scope="module")
def mini_corpus() -> Path:
    if SHARED is None:
        pytest.skip("shared/data/mini_wiki_corpus.jsonl not found")
    return SHARED / "mini_wiki_corpus.jsonl"


@pytest.fixture(scope="module")
def mini_index(mini_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mini") / "index"
    build_index(mini_corpus, out, progress=False, chunk_size=300)
    return out


# ---------------------------------------------------------------- small corpora of each format

KILT_LINES = [
    {"wikipedia_id": "12", "wikipedia_title": "Anarchism",
     "text": ["Anarchism\n", "Anarchism is a political philosophy that rejects hierarchy.\n",
              "Section::::History.\n", "The roots of anarchism reach antiquity."]},
    {"wikipedia_id": "25", "wikipedia_title": "Zebra",
     "text": ["Zebra\n", "Section::::Taxonomy.\n", "Zebras are African equines with black and white stripes.\n",
              "Zebras live in herds."]},
    {"wikipedia_id": "39", "wikipedia_title": "Albedo", "text": ["Albedo\n", "Albedo measures the diffuse reflection of sunlight."]},
]
DPR_TSV = (
    "id\ttext\ttitle\n"
    '1\t"Aaron Aaron ( or ; ""Ahärôn"") is a prophet, high priest, and the brother of Moses"\tAaron\n'
    "2\tThe okapi is a giraffid mammal native to the Congo rainforest\tOkapi\n"
    "3\tQuokkas are small marsupials found on Rottnest Island\tQuokka\n"
)
JSONL_LINES = [
    {"id": "a", "contents": "Marie Curie\nMarie Curie was a physicist who researched radioactivity."},
    {"id": "b", "contents": "Teflon\nPolytetrafluoroethylene is a synthetic fluoropolymer."},
    {"id": "c", "title": "Kestrel", "text": "The kestrel is a small falcon that hovers."},
]


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpora(tmp_path: Path) -> dict[str, Path]:
    dpr = tmp_path / "psgs.tsv"
    dpr.write_text(DPR_TSV, encoding="utf-8")
    gz = tmp_path / "psgs.tsv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(DPR_TSV)
    return {
        "kilt": _write_jsonl(tmp_path / "kilt_knowledgesource.json", KILT_LINES),
        "dpr": dpr,
        "dpr_gz": gz,
        "jsonl": _write_jsonl(tmp_path / "corpus.jsonl", JSONL_LINES),
    }


# ---------------------------------------------------------------- readers


def test_detect_format(corpora: dict[str, Path]) -> None:
    assert detect_format(corpora["kilt"]) == "kilt"
    assert detect_format(corpora["dpr"]) == "dpr"
    assert detect_format(corpora["dpr_gz"]) == "dpr"
    assert detect_format(corpora["jsonl"]) == "jsonl"


def test_readers_parse_each_format(corpora: dict[str, Path]) -> None:
    kilt = list(read_passages(corpora["kilt"]))
    assert [p.id for p in kilt] == ["12", "25", "39"]
    assert kilt[0].title == "Anarchism" and "Anarchism" not in kilt[0].paragraphs  # text[0] repeats the title
    assert kilt[0].first_paragraph() == "Anarchism is a political philosophy that rejects hierarchy."
    assert kilt[1].first_paragraph().startswith("Zebras are African")  # a heading is never the first paragraph
    assert "Section::::Taxonomy." in kilt[1].index_text()

    dpr = list(read_passages(corpora["dpr"]))
    assert [(p.id, p.title) for p in dpr] == [("1", "Aaron"), ("2", "Okapi"), ("3", "Quokka")]  # header skipped
    assert dpr[0].first_paragraph() == 'Aaron Aaron ( or ; "Ahärôn") is a prophet, high priest, and the brother of Moses'
    assert list(read_passages(corpora["dpr_gz"])) == dpr

    jsonl = list(read_passages(corpora["jsonl"]))
    assert [(p.id, p.title) for p in jsonl] == [("a", "Marie Curie"), ("b", "Teflon"), ("c", "Kestrel")]
    assert jsonl[0].first_paragraph() == "Marie Curie was a physicist who researched radioactivity."


def test_dpr_header_may_reorder_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("title\tid\ttext\nOkapi\t7\tThe okapi is a giraffid\n", encoding="utf-8")
    (p,) = read_passages(path)
    assert (p.id, p.title, p.first_paragraph()) == ("7", "Okapi", "The okapi is a giraffid")


BAD_LINES = [
    (b'{"id": "x", "contents": "T\\nok"}\n{"id": "y", "contents": \n', "jsonl", 2, "invalid JSON"),
    (b'{"id": "x", "contents": "T\\nok"}\n{"contents": "no id"}\n', "jsonl", 2, "missing field 'id'"),
    (b'{"id": "x", "contents": "T\\nok"}\n{"id": "y", "contents": "caf\xe9"}\n', "jsonl", 2, "UnicodeDecodeError"),
    (b'{"wikipedia_id": "1", "wikipedia_title": "T", "text": ["T", "ok"]}\n{"wikipedia_id": "2", "text": "str"}\n',
     "kilt", 2, "wikipedia_title"),
    (b"id\ttext\ttitle\n1\tok\tT\n2\tonly two\n", "dpr", 3, "expected 3 tab-separated fields"),
]


@pytest.mark.parametrize(("content", "fmt", "line", "reason"), BAD_LINES)
def test_bad_line_names_file_and_line(tmp_path: Path, content: bytes, fmt: str, line: int, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError) as err:
        list(read_passages(path, fmt))
    assert err.value.line == line and err.value.path == str(path)
    assert f"{path}:{line}:" in str(err.value) and reason in str(err.value)
    skipped: list[CorpusError] = []
    assert len(list(read_passages(path, fmt, on_error=skipped.append))) == 1 and len(skipped) == 1


# ---------------------------------------------------------------- the index


def test_index_equals_bm25s_own_build(mini_corpus: Path, mini_index: Path) -> None:
    """Our two-pass streaming build writes the very matrix bm25s.BM25().index() computes."""
    passages = list(read_passages(mini_corpus))
    tokenizer = BuildSettings().tokenizer()
    ids = tokenizer.tokenize([p.index_text() for p in passages], update_vocab=True, show_progress=False)
    reference = bm25s.BM25()
    reference.index((ids, tokenizer.word_to_id), show_progress=False)
    ours = SearchIndex(mini_index).retriever
    assert ours.vocab_dict == reference.vocab_dict
    np.testing.assert_array_equal(ours.scores["indptr"], reference.scores["indptr"])
    np.testing.assert_array_equal(ours.scores["indices"], reference.scores["indices"])
    np.testing.assert_allclose(ours.scores["data"], reference.scores["data"], rtol=1e-6)
    manifest = read_manifest(mini_index)
    assert manifest["passages"] == len(passages) == 1751 and manifest["complete"] and manifest["format"] == "jsonl"


def test_small_steps_give_the_same_index(mini_corpus: Path, mini_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk and step boundaries (7 passages per chunk, 500 pairs per scoring step) change nothing."""
    write = index_module._write_matrix
    monkeypatch.setattr(index_module, "_write_matrix", lambda *a, **k: write(*a, **k, pairs_per_step=500))
    build_index(mini_corpus, tmp_path / "small", progress=False, chunk_size=7, max_passages=400)
    small = SearchIndex(tmp_path / "small").retriever.scores
    build_index(mini_corpus, tmp_path / "big", progress=False, max_passages=400)
    big = SearchIndex(tmp_path / "big").retriever.scores
    for key in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(small[key], big[key])


def test_distinctive_words_find_their_passage(mini_corpus: Path, mini_index: Path) -> None:
    passages = list(read_passages(mini_corpus))
    tokenizer = BuildSettings().tokenizer()
    tokens = tokenizer.tokenize([p.index_text() for p in passages], update_vocab=True, return_as="string", show_progress=False)
    df = Counter(t for toks in tokens for t in set(toks))
    index = SearchIndex(mini_index)
    picked = range(0, len(passages), 25)
    queries = [" ".join(sorted(set(tokens[i]), key=lambda t: (df[t], t))[:6]) for i in picked]
    for i, hits in zip(picked, index.search(queries, k=1)):
        assert hits, queries
        assert hits[0].id == passages[i].id or hits[0].text == passages[i].first_paragraph()[:4000]


def test_search_agrees_with_bm25s_retrieve(mini_index: Path) -> None:
    """Our top-k (among non-zero scores) returns what bm25s's retrieve returns."""
    index = SearchIndex(mini_index)
    queries = ["who sings does he love you with reba", "Evan Morris lobbyist", "country music love triangle",
               "american football quarterback", "river flows into the sea", "british royal navy ship"]
    ours = index.search(queries, k=3)
    docs, scores = index.retriever.retrieve(index.query_ids(queries), k=3, show_progress=False)
    for hits, want_docs, want_scores in zip(ours, docs, scores):
        np.testing.assert_allclose([h.score for h in hits], want_scores, rtol=1e-6)
        tied = {float(s) for s in want_scores if list(want_scores).count(s) > 1}
        assert [h.index for h in hits if h.score not in tied] == [int(d) for d, s in zip(want_docs, want_scores) if float(s) not in tied]


def test_each_format_builds_and_answers(corpora: dict[str, Path], tmp_path: Path) -> None:
    cases = {
        "kilt": ("political philosophy hierarchy", "Anarchism is a political philosophy that rejects hierarchy."),
        "dpr": ("marsupials Rottnest", "Quokkas are small marsupials found on Rottnest Island"),
        "dpr_gz": ("giraffid Congo", "The okapi is a giraffid mammal native to the Congo rainforest"),
        "jsonl": ("falcon hovers", "The kestrel is a small falcon that hovers."),
    }
    for name, (query, answer) in cases.items():
        build_index(corpora[name], tmp_path / name, progress=False)
        assert WikiSearch(str(tmp_path / name)).call(query) == answer, name


def test_bad_lines_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"id": "1", "contents": "A\\nalpha"}\nnot json\n{"id": "2", "contents": "B\\nbravo"}\n{"id": 3}\n')
    report = build_index(path, tmp_path / "idx", progress=False)
    assert (report.passages, report.bad_lines, report.complete) == (2, 2, True)
    assert report.bad_line_examples[0].startswith(f"{path}:2:") and report.bad_line_examples[1].startswith(f"{path}:4:")
    assert f"{path}:2:" in caplog.text
    assert read_manifest(tmp_path / "idx")["bad_lines"] == 2


def test_strict_stops_but_keeps_a_usable_partial_index_beside_the_target(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "c.jsonl", [JSONL_LINES[0], JSONL_LINES[1], "{broken", JSONL_LINES[2]])
    out = tmp_path / "idx"
    with pytest.raises(PartialIndexError) as err:
        build_index(path, out, progress=False, strict=True, chunk_size=1)
    partial = err.value.index_dir
    assert partial is not None and partial.parent == tmp_path and partial.name.startswith("idx.partial-")
    assert not out.exists(), "a partial build must not take the target's place"
    message = str(err.value)
    assert f"{path}:3:" in message and str(partial) in message and "2 passages" in message
    manifest = read_manifest(partial)
    assert (manifest["complete"], manifest["passages"], manifest["stopped_at"]) == (False, 2, f"{path}:3")
    assert WikiSearch(str(partial)).call("radioactivity physicist").startswith("Marie Curie was")
    assert stale_reason(path, partial) is not None and "partial" in stale_reason(path, partial)  # type: ignore[operator]


def test_strict_never_replaces_a_complete_index(tmp_path: Path) -> None:
    good = _write_jsonl(tmp_path / "good.jsonl", JSONL_LINES)
    out = tmp_path / "idx"
    build_index(good, out, progress=False)
    before = read_manifest(out)
    broken = _write_jsonl(tmp_path / "broken.jsonl", [JSONL_LINES[0], "{broken"])
    with pytest.raises(PartialIndexError) as err:
        build_index(broken, out, progress=False, strict=True)
    assert read_manifest(out) == before and before["complete"] and before["passages"] == len(JSONL_LINES)
    assert err.value.index_dir != out and read_manifest(err.value.index_dir)["passages"] == 1  # type: ignore[arg-type]
    with pytest.raises(PartialIndexError) as again:  # a second one gets its own place
        build_index(broken, out, progress=False, strict=True)
    assert again.value.index_dir not in (out, err.value.index_dir)


def test_build_refuses_a_directory_that_is_not_an_index(tmp_path: Path) -> None:
    corpus = _write_jsonl(tmp_path / "c.jsonl", JSONL_LINES)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(IndexTargetError) as err:
        build_index(corpus, out, progress=False)
    assert str(out) in str(err.value) and "nothing was deleted" in str(err.value) and "\n" not in str(err.value)
    assert (out / "notes.txt").read_text() == "my notes" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    with pytest.raises(IndexTargetError):
        build_index(corpus, out, progress=False, strict=True)
    (out / "manifest.json").write_text("not json")  # a manifest that is not ours
    with pytest.raises(IndexTargetError):
        build_index(corpus, out, progress=False)
    assert (out / "notes.txt").read_text() == "my notes"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(IndexTargetError, match="not a directory"):
        build_index(corpus, a_file, progress=False)
    assert not list(tmp_path.glob(".*building*")) and not list(tmp_path.glob("*.partial-*"))


def test_build_may_fill_an_empty_directory_or_replace_our_index(tmp_path: Path) -> None:
    corpus = _write_jsonl(tmp_path / "c.jsonl", JSONL_LINES)
    out = tmp_path / "idx"
    out.mkdir()
    assert build_index(corpus, out, progress=False).passages == len(JSONL_LINES)
    fewer = _write_jsonl(tmp_path / "d.jsonl", JSONL_LINES[:2])
    assert build_index(fewer, out, progress=False).passages == 2 and read_manifest(out)["passages"] == 2


def test_deeply_nested_json_line_is_skipped_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    path = _write_jsonl(tmp_path / "c.jsonl", [JSONL_LINES[0], deep, '{"id": "x", "contents": ' + deep + "}", JSONL_LINES[1]])
    report = build_index(path, tmp_path / "idx", progress=False)
    assert (report.passages, report.bad_lines) == (2, 2)
    assert report.bad_line_examples[0] == f"{path}:2: JSON nested too deeply to read"
    assert report.bad_line_examples[1].startswith(f"{path}:3:")
    assert f"{path}:2:" in caplog.text
    with pytest.raises(PartialIndexError, match=f"{path}:2:"):
        build_index(path, tmp_path / "strict", progress=False, strict=True)
    assert detect_format(path) == "jsonl"


def test_strict_with_nothing_before_the_bad_line(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "c.jsonl", ["{broken", JSONL_LINES[0]])
    with pytest.raises(PartialIndexError, match="nothing was saved") as err:
        build_index(path, tmp_path / "idx", progress=False, strict=True)
    assert err.value.index_dir is None and not (tmp_path / "idx").exists()


def test_ensure_index_builds_only_when_missing_or_stale(corpora: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "idx"
    ensure_index(corpora["jsonl"], out)
    first = read_manifest(out)
    ensure_index(corpora["jsonl"], out)
    assert read_manifest(out) == first  # fresh: not rebuilt
    with open(corpora["jsonl"], "a") as f:
        f.write(json.dumps({"id": "d", "contents": "Osprey\nThe osprey eats fish."}) + "\n")
    assert "corpus_bytes changed" in (stale_reason(corpora["jsonl"], out) or "")
    ensure_index(corpora["jsonl"], out)
    assert read_manifest(out)["passages"] == 4
    assert stale_reason(corpora["jsonl"], out, settings=BuildSettings(k1=1.2)) == "build settings changed"


# ---------------------------------------------------------------- the tool


def test_tool_cuts_to_max_chars(mini_index: Path) -> None:
    long = WikiSearch(str(mini_index), max_chars=10_000).call("Evan Morris lobbyist Genentech Roche")
    short = WikiSearch(str(mini_index), max_chars=50).call("Evan Morris lobbyist Genentech Roche")
    assert len(long) > 400 and long.startswith("Evan Morris Evan L. Morris")
    assert short == long[:50]
    assert len(WikiSearch(str(mini_index)).call("Evan Morris lobbyist Genentech Roche")) == 400  # the seed's default


def test_tool_returns_first_paragraph_and_top_k(corpora: dict[str, Path], tmp_path: Path) -> None:
    build_index(corpora["kilt"], tmp_path / "idx", progress=False)
    one = WikiSearch(str(tmp_path / "idx"))
    assert one.call("zebra stripes herds") == "Zebras are African equines with black and white stripes."
    two = WikiSearch(str(tmp_path / "idx"), top_k=2)
    assert set(two.call("anarchism zebra").split("\n")) == {
        "Anarchism is a political philosophy that rejects hierarchy.", "Zebras are African equines with black and white stripes."}
    assert two.call("albedo") == "Albedo measures the diffuse reflection of sunlight."  # passages without a shared word are left out


def test_batch_equals_single(mini_index: Path) -> None:
    queries = ["who sings does he love you with reba", "Evan Morris lobbyist", "Roche Washington intern",
               "country music love triangle", "who sings does he love you with reba"]
    batch = WikiSearch(str(mini_index), cache_size=0, top_k=2).call_batch(queries)
    single_tool = WikiSearch(str(mini_index), cache_size=0, top_k=2)
    assert batch == [single_tool.call(q) for q in queries]
    assert batch[0] == batch[-1]


def test_no_match_is_a_tool_error_for_that_query_only(mini_index: Path) -> None:
    tool = WikiSearch(str(mini_index))
    for query in ("", "the of and", "qwxzqwxz"):
        with pytest.raises(ToolError, match="no passage matches"):
            tool.call(query)
    results = call_batch(tool, ["the of", "Evan Morris lobbyist"])
    assert results[0].error == "tool_error" and results[1].ok and results[1].text.startswith("Evan Morris")


def test_tool_can_build_its_index_from_a_corpus(corpora: dict[str, Path], tmp_path: Path) -> None:
    tool = WikiSearch(str(tmp_path / "lazy"), corpus=str(corpora["dpr"]))
    assert tool.call("Moses brother prophet").startswith("Aaron Aaron")


def test_tool_rejects_bad_settings(mini_index: Path) -> None:
    with pytest.raises(ValueError, match="top_k"):
        WikiSearch(str(mini_index), top_k=0)
    with pytest.raises(ValueError, match="max_chars"):
        WikiSearch(str(mini_index), max_chars=0)
    with pytest.raises(FileNotFoundError, match="python -m orchestrator.tools.search build"):
        WikiSearch(str(mini_index) + "-missing")


# ---------------------------------------------------------------- the command line


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "orchestrator.tools.search", *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)


def test_cli_build_query_info(corpora: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "idx"
    done = _cli("build", "--corpus", str(corpora["dpr"]), "--out", str(out), "--format", "dpr")
    assert done.returncode == 0, done.stderr
    assert "3 passages" in done.stdout and "read psgs.tsv" in done.stderr  # the progress bar
    found = _cli("query", "--index", str(out), "-k", "1", "okapi", "Congo")
    assert found.returncode == 0 and "Okapi" in found.stdout
    assert json.loads(_cli("info", "--index", str(out)).stdout)["passages"] == 3


def test_cli_strict_reports_where_the_partial_index_is(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "c.jsonl", [JSONL_LINES[0], "{broken"])
    done = _cli("build", "--corpus", str(path), "--out", str(tmp_path / "idx"), "--strict", "--quiet")
    assert done.returncode == 1
    assert f"{path}:2:" in done.stderr and f"partial index at {tmp_path / 'idx'}.partial-" in done.stderr
    assert not (tmp_path / "idx").exists()


def test_cli_refuses_a_directory_that_is_not_an_index(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "c.jsonl", JSONL_LINES)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    done = _cli("build", "--corpus", str(path), "--out", str(tmp_path / "mine"), "--quiet")
    assert done.returncode == 2 and done.stderr.strip().startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my notes"


# ---------------------------------------------------------------- the Ray pool


@pytest.fixture
def ray_local(local_ray):
    import ray

    yield ray


@pytest.mark.ray
@needs_mini
def test_runs_share_one_pool_per_index(ray_local, mini_index: Path) -> None:
    from orchestrator.tools.base import ToolCall
    from orchestrator.tools.pool import PoolOptions, build_router

    cfg = {"_target_": "orchestrator.tools.search.WikiSearch", "name": "Wiki", "index_dir": str(mini_index), "max_chars": 60}
    prefix = pool_prefix(mini_index)
    first = build_router([cfg], PoolOptions(num_actors=1), actor_prefix=prefix)
    second = build_router([cfg], PoolOptions(num_actors=1), actor_prefix=prefix)  # a second run on the node
    pid = lambda router: ray_local.get(router.pools["Wiki"].actors[0].pid.remote())  # noqa: E731
    assert pid(first) == pid(second)
    results = second.call([ToolCall("Wiki", "Evan Morris lobbyist"), ToolCall("Wiki", "the of"), ToolCall("Wiki", "reba linda davis duet")])
    assert results[0].text == "Evan Morris Evan L. Morris (January 26, 1977 – July 9, 2015)"[:60]
    assert results[1].error == "tool_error" and results[2].ok and len(results[2].text) == 60
    first.shutdown()


def test_pool_prefix_differs_per_index(tmp_path: Path, corpora: dict[str, Path]) -> None:
    build_index(corpora["dpr"], tmp_path / "a", progress=False)
    build_index(corpora["jsonl"], tmp_path / "b", progress=False)
    assert pool_prefix(tmp_path / "a") == pool_prefix(str(tmp_path / "a"))
    assert pool_prefix(tmp_path / "a") != pool_prefix(tmp_path / "b")
