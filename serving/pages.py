"""The Japanese pages: static HTML files with shared fragments included at serving time."""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from string import Template

from models.configs import task_labels

STATIC = Path(__file__).parent / "static"
INCLUDE = re.compile(r"<!--kyodo:([a-z-]+)((?:\s+[a-z]+=\"[^\"]*\")*)\s*-->")
ATTR = re.compile(r"([a-z]+)=\"([^\"]*)\"")
KEY_HINT = "キーはこのタブを閉じるまでブラウザ内（sessionStorage）にのみ保存されます。"
DEFAULTS = {"key-form": {"heading": "1. APIキー", "label": "APIキー", "size": "34",
                         "hint": KEY_HINT}}


@cache
def render(name: str) -> str:
    """static/<name>.html with each <!--kyodo:fragment attr="..."--> replaced by
    static/_<fragment>.html, its $placeholders filled from the attributes or the defaults. A
    listed task without its own page gets static/_task.html, the generic page of the generic
    routes (serving/generic.py), with its name and Japanese label filled in."""
    page = STATIC / f"{name}.html"
    if page.is_file() or name not in task_labels():
        text = page.read_text(encoding="utf-8")
    else:
        text = (STATIC / "_task.html").read_text(encoding="utf-8")
        text = text.replace("{{task}}", html.escape(name)).replace(
            "{{label}}", html.escape(task_labels()[name]))
    return INCLUDE.sub(_fragment, text)


def _fragment(match: re.Match[str]) -> str:
    name = match.group(1)
    values = {**DEFAULTS.get(name, {}),
              **{k: html.escape(v) for k, v in ATTR.findall(match.group(2))}}
    text = (STATIC / f"_{name}.html").read_text(encoding="utf-8")
    body = text.split("-->\n", 1)[1] if text.startswith("<!--") else text
    return Template(body).substitute(values).lstrip()
