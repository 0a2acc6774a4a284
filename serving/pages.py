"""The Japanese pages: static HTML files with shared fragments included at serving time."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from string import Template

from models.configs import task_labels

STATIC = Path(__file__).parent / "static"
INCLUDE = re.compile(r"<!--kyodo:([a-z-]+)((?:\s+[a-z]+=\"[^\"]*\")*)\s*-->")
ATTR = re.compile(r"([a-z]+)=\"([^\"]*)\"")
KEY_HINT = "キーはこのタブを閉じるまでブラウザ内（sessionStorage）にのみ保存されます。"
DEFAULTS = {"key-form": {"heading": "1. APIキー", "label": "APIキー", "size": "34",
                         "hint": KEY_HINT},
            "header": {"nav": ""}}
# the platform pages, linked to each other in their headers (<!--kyodo:header nav="costs"-->)
PLATFORM_PAGES = {"costs": "費用按分", "operations": "運用状況（利用・効果・ドリフト・モデル）"}
INDEX = "index"  # static/index.html, the page at / and /ui


@cache
def render(name: str) -> str:
    """static/<name>.html with each <!--kyodo:fragment attr="..."--> replaced by
    static/_<fragment>.html, its $placeholders filled from the attributes or the defaults
    (`task-links`: the list of task pages, built here). A listed task without its own page gets
    the generic page of the generic routes (task_page). FileNotFoundError for neither; KeyError
    naming the placeholder a fragment lacks a value for."""
    page = STATIC / f"{name}.html"
    if page.is_file() or name not in task_labels():
        return _include(page.read_text(encoding="utf-8"))
    return task_page(name, task_labels()[name])


def task_page(task: str, label: str) -> str:
    """static/_task.html, the generic page of the generic routes (serving/generic.py), for
    `task` with its Japanese `label` (configs/platform.yaml tasks) filled in, both escaped."""
    text = _include((STATIC / "_task.html").read_text(encoding="utf-8"))
    return text.replace("{{task}}", html.escape(task)).replace("{{label}}", html.escape(label))


def _include(text: str) -> str:
    return INCLUDE.sub(_fragment, text)


def _fragment(match: re.Match[str]) -> str:
    name = match.group(1)
    values = {**DEFAULTS.get(name, {}),
              **{k: html.escape(v) for k, v in ATTR.findall(match.group(2))}}
    if name in GENERATED:
        return GENERATED[name](values)
    if name == "header":
        values["nav"] = _nav(values["nav"])
    text = (STATIC / f"_{name}.html").read_text(encoding="utf-8")
    body = text.split("-->\n", 1)[1] if text.startswith("<!--") else text
    return Template(body).substitute(values).strip()


def _nav(current: str) -> str:
    """The header's links between the platform pages, `current` marked (aria-current); "" for
    a page outside them (nav attribute absent). ValueError naming an unknown page."""
    if not current:
        return ""
    if current not in PLATFORM_PAGES:
        raise ValueError(f"header nav={current!r}: one of {', '.join(PLATFORM_PAGES)}")
    mark = ' aria-current="page"'
    links = "".join(f'    <a href="/ui/{p}"{mark if p == current else ""}>{label}</a>\n'
                    for p, label in PLATFORM_PAGES.items())
    return f'  <nav class="pages" aria-label="管理ページ">\n{links}  </nav>\n'


def _task_links(_: dict[str, str]) -> str:
    """One <li> per task of configs/platform.yaml `tasks`, in that order: a link to its page
    (/ui/<task>) with its Japanese label, and an empty subscription badge the index page's
    script fills in after login."""
    return "\n".join(
        f'<li data-task="{html.escape(t)}" data-testid="task-item">'
        f'<a href="/ui/{html.escape(t)}" data-testid="task-link">{html.escape(label)}</a> '
        f'<span class="badge" data-testid="subscription" hidden></span></li>'
        for t, label in task_labels().items())


GENERATED: dict[str, Callable[[dict[str, str]], str]] = {"task-links": _task_links}
