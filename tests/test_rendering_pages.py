"""Nothing from data or URLs is rendered as markup, on any page (AppTest).

Every page runs over the demo database with hostile text planted in every kind of text it shows
(tests/hostile_data.py: markdown links and images, HTML links and bold, markdown bold, a
backtick, a bare URL and an e-mail address), and with hostile values in every URL parameter a
page reads. Then every text Streamlit renders as markdown (markdown, captions, headers, alerts,
metric labels, values and deltas, widget labels, help and markdown options, tab labels) must
show that text escaped, and no Plotly figure may hold a link or HTML from the data. Each check
also makes sure the planted text did reach the page, so it cannot pass by showing nothing.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator

import hostile_data
import pytest
from conftest import page_file
from hostile_data import hostile
from streamlit.testing.v1 import AppTest

from ccrm_core.foundation import rendering
from ccrm_core.radar import segments

LONG = "x" * 100_000

# Unescaped markdown or HTML in a markdown body: a link or image (`](`, `![`), raw HTML, markdown
# bold or code from the data, and what GFM would autolink (a URL, `www.`, an e-mail address).
MARKDOWN_MARKUP = re.compile(
    r"\]\(|!\[|(?<!\\)<(a|b|img)\b|(?<!\\)\*\*evil|(?<!\\)`evil|://evil|www\.evil|\w@evil",
    re.IGNORECASE,
)
# HTML Plotly would render from the data: a link, an image or the planted bold.
FIGURE_MARKUP = re.compile(r"<a\b|<img\b|<b>evil|<span\b", re.IGNORECASE)
# How the planted text looks once escaped, in markdown and in a figure.
ESCAPED_MARKDOWN = "evil\\.example"
ESCAPED_FIGURE = "&lt;a href="


def _nodes(node) -> Iterator:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def markdown_texts(at: AppTest) -> list[tuple[str, str]]:
    """(element, text) for every text of the page that Streamlit renders as markdown."""
    out = []
    for node in _nodes(at._tree):
        kind = getattr(node, "type", "")
        if kind in ("markdown", "caption", "title", "header", "subheader"):
            out.append((kind, node.value))
        elif kind in ("error", "warning", "info", "success", "toast"):
            out.append((kind, node.value))
        elif kind == "metric":
            out += [(f"metric {part}", getattr(node, part)) for part in ("label", "value", "delta")]
        elif kind in ("tab", "expander"):
            out.append((f"{kind} label", node.label))
        elif kind == "progress":
            out.append(("progress text", node.proto.text))
        if kind in ("radio", "button_group"):  # their options are markdown too
            out += [(f"{kind} option", str(o)) for o in node.options]
        for part in ("label", "help"):
            value = getattr(getattr(node, "proto", None), part, None)
            if isinstance(value, str) and value:
                out.append((f"{kind} {part}", value))
    return out


def figure_texts(at: AppTest) -> list[str]:
    """Every string in every Plotly figure of the page (decoded from the spec's JSON)."""

    def strings(value) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    return [s for chart in at.get("plotly_chart") for s in strings(json.loads(chart.proto.spec))]


def markup_problems(at: AppTest) -> list[str]:
    """Where the page renders markup from the data, shows a too-long echo, or raised."""
    problems = [f"exception: {e.value}" for e in at.exception]
    for where, text in markdown_texts(at):
        if MARKDOWN_MARKUP.search(text):
            problems.append(f"{where}: {text[:300]!r}")
        if len(text) > 5_000:
            problems.append(f"{where}: {len(text):,} characters")
    problems += [f"figure: {s[:300]!r}" for s in figure_texts(at) if FIGURE_MARKUP.search(s)]
    return problems


def shows_planted_text(at: AppTest) -> bool:
    return any(ESCAPED_MARKDOWN in text for _, text in markdown_texts(at)) or any(
        ESCAPED_FIGURE in s for s in figure_texts(at)
    )


@pytest.fixture()
def planted(demo_db_copy, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("CCRM_DB", str(demo_db_copy))
    return hostile_data.plant(demo_db_copy)


def run(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(page_file(page), default_timeout=300)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def check(at: AppTest, needs_planted_text: bool = True) -> None:
    assert markup_problems(at) == []
    if needs_planted_text:
        assert shows_planted_text(at)


# ---------------------------------------------------------------------------------------------
# The helper


def test_markdown_text_escapes_every_markdown_character():
    assert rendering.markdown_text("[x](http://e.example)") == (
        "\\[x\\]\\(http\u2060\\:\\/\\/e\\.example\\)"
    )
    assert rendering.markdown_text("![i](u) **b** `c` <a> & $x$ :red[r] #1. |") == (
        "\\!\\[i\\]\\(u\\) \\*\\*b\\*\\* \\`c\\` \\<a\\> \\& \\$x\\$ \\:red\\[r\\] \\#1\\. \\|"
    )
    # bare links: GFM links them after escapes are read, so a word joiner breaks them
    assert rendering.markdown_text("www.a.b me@a.b HTTPS://a") == (
        "www\u2060\\.a\\.b me\u2060\\@a\\.b HTTPS\u2060\\:\\/\\/a"
    )
    # line breaks cannot start a block of their own; letters of any script stay as they are
    assert rendering.markdown_text("a\n# b\r\n- c") == "a \\# b  \\- c"
    assert rendering.markdown_text("Zoë 李小龙 Мария 😀") == "Zoë 李小龙 Мария 😀"
    assert rendering.markdown_text(None) == "" and rendering.markdown_text(12.5) == "12\\.5"


def test_markdown_text_shortens_before_escaping():
    assert rendering.markdown_text("a*" * 50_000, limit=5) == "a\\*a\\*…"
    assert rendering.markdown_text("**", limit=5) == "\\*\\*"


def test_plotly_text_escapes_html():
    assert rendering.plotly_text('<a href="http://e">x</a> & <b>') == (
        '&lt;a href="http://e"&gt;x&lt;/a&gt; &amp; &lt;b&gt;'
    )
    assert rendering.plotly_text("&lt;") == "&amp;lt;"  # shows as typed, not as "<"
    assert rendering.plotly_text(None) == "" and rendering.plotly_text("tv") == "tv"


def test_shortened_cuts_long_text_with_an_ellipsis():
    assert rendering.shortened(LONG, 10) == "x" * 9 + "…"
    assert rendering.shortened("short", 10) == "short"
    assert rendering.shortened("abc", 3) == "abc"
    assert rendering.shortened(None, 10) == "None"


# ---------------------------------------------------------------------------------------------
# Every page over hostile data and hostile URL parameters


def test_command_center(planted):
    params = {key: hostile(f"url-{key}") for key in ("period", "segment", "channel", "source")}
    params |= {key: hostile(f"url-{key}") for key in ("window", "metric", "grain")}
    params |= {key: hostile(f"url-{key}") for key in ("why", "vs", "by", "alert")}
    at = run("command_center", **params)
    check(at)
    warnings = [w.value for w in at.warning if w.value.startswith("Link not fully applied")]
    assert len(warnings) == 11  # one per parameter
    # custom period with hostile, 100k-character dates: named, escaped and shortened
    at = run("command_center", period="custom", start=LONG, end=hostile("url-end"))
    check(at)
    [custom] = [w.value for w in at.warning if "period\\=custom" in w.value]
    assert len(custom) < 600 and "x…" in custom
    # a hostile segment and channel chosen in the filters reach the funnel, titles and captions
    segment = next(o for o in at.selectbox(key="cc_segment").options if "evil" in o)
    channel = next(o for o in at.selectbox(key="cc_channel").options if "evil" in o)
    at.query_params.clear()
    at.selectbox(key="cc_segment").set_value(segment.replace(": ", ":", 1))
    at.selectbox(key="cc_channel").set_value(channel).run()
    check(at)


def test_segment_explorer(planted):
    at = run("segment_explorer")
    check(at)
    at.selectbox(key="scheme").set_value(segments.SAVED_SCHEME).run()
    check(at)
    assert any(rendering.plotly_text(planted["saved_segment"]) in s for s in figure_texts(at))


def test_customer_360(planted):
    # a linked id that is not there: named, escaped, shortened; a backtick cannot end a span
    for bad in (hostile("url-customer_id"), "`x` [phish](http://evil.example/p)", LONG):
        at = run("customer_360", customer_id=bad)
        assert markup_problems(at) == []
        assert at.error[0].value.startswith("No customer with id")
        assert len(at.error[0].value) < 400
    # the profile of a customer whose id, names, city, sources, campaign and reasons are hostile
    at = run("customer_360", customer_id=planted["customer_id"])
    check(at)
    at.toggle(key="c360_reveal").set_value(True).run()
    check(at)
    assert at.header[0].value.startswith(rendering.markdown_text(hostile("customers.first_name")))
    assert rendering.markdown_text(hostile("mart_nba.campaign_name")) in at.success[0].value
    # a hostile search is quoted back escaped and shortened
    at.text_input(key="c360_query").input(hostile("query") + LONG).run()
    check(at)


def test_attribution(planted):
    at = run("attribution", scheme=hostile("url-scheme"), model=hostile("url-model"))
    check(at)
    assert len([w for w in at.warning if w.value.startswith("Link not fully applied")]) == 2
    at.selectbox(key="scheme").select_index(1).run()  # a segment scheme: hostile segments
    at.selectbox(key="segment").select_index(0).run()
    check(at)
    # the reconciliation paragraph names channels and experiments
    assert any(ESCAPED_MARKDOWN in m.value for m in at.markdown)


def test_budget_simulator(planted):
    at = run("budget_simulator", plan=hostile("url-plan"), objective=hostile("url-objective"))
    check(at)
    assert len([w for w in at.warning if w.value.startswith("Link not fully applied")]) == 2
    sliders = [s.label for s in at.slider if "(current " in s.label]
    assert sliders and all(ESCAPED_MARKDOWN in s for s in sliders)
    at.multiselect(key="budget_compare").select(hostile_data.SCENARIO).run()
    check(at)
    assert any(rendering.plotly_text(hostile_data.SCENARIO) in s for s in figure_texts(at))
    at.selectbox(key="budget_load_name").set_value(hostile_data.SCENARIO)
    at.button(key="budget_load").click().run()
    check(at)
    loaded = f"Loaded scenario “{rendering.markdown_text(hostile_data.SCENARIO)}”"
    assert any(i.value.startswith(loaded) for i in at.info)


def test_data_hygiene(planted):
    at = run("data_hygiene")
    check(at)
    assert any(ESCAPED_MARKDOWN in m.label for m in at.metric)  # score per source system


def test_data_page_with_a_hostile_upload(planted):
    at = run("data")
    check(at)
    assert rendering.markdown_text(hostile("build_error")) in at.error[0].value
    # an upload whose extra column and rejected value are hostile: the warnings quote them
    header = ",".join(
        ["source_system", "source_id", "first_name", "birth_date", "[col](http://evil.example/c)"]
    )
    rows = [f"web,U{i},Ann,1990-01-01,x" for i in range(300)]
    bad = "web,U999,Zed,![x](http://evil.example/i.png),x"
    csv = "\n".join([header, *rows, bad]) + "\n"
    name = "src_customers [f](http:evil.example).csv"
    at.file_uploader[0].upload(name, csv.encode(), "text/csv")
    next(s for s in at.selectbox if s.label == "Table").set_value("src_customers").run()
    next(b for b in at.button if b.label == "Load files").click().run()
    check(at)
    texts = [w.value for w in at.warning] + [s.value for s in at.success]
    assert any("col" in t and ESCAPED_MARKDOWN in t for t in texts), texts


def test_data_page_escapes_the_database_file_name(demo_db, tmp_path, monkeypatch):
    """A database file name is text from outside the code too (CCRM_DB, --db)."""
    target = tmp_path / "[db](http:evil.example) `x.duckdb"
    shutil.copy(demo_db, target)
    monkeypatch.setenv("CCRM_DB", str(target))
    at = run("data")
    assert markup_problems(at) == []
    assert at.caption[0].value == f"Database: {rendering.markdown_text(target)}"
