#!/usr/bin/env python3
"""Fail if any page of the built book loads a script, stylesheet or font from outside the build folder.

Offline (a classroom, a train, a CI runner) anything fetched from a CDN is missing: MathJax from a CDN
leaves every equation as raw LaTeX. Checks <script src>, <link href> (stylesheets, preloads) and
<iframe>/<img src> of every HTML file under the build, and that each local target exists.
Usage: check_offline.py [_build/html]
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LOADING = {"script": "src", "link": "href", "iframe": "src", "img": "src"}
LINK_RELS_THAT_LOAD = {"stylesheet", "preload", "modulepreload", "icon", "shortcut icon"}


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag not in LOADING or not attr.get(LOADING[tag]):
            return
        if tag == "link" and (attr.get("rel") or "").lower() not in LINK_RELS_THAT_LOAD:
            return  # <link rel="next"> etc. are navigation, not loads
        self.urls.append((tag, attr[LOADING[tag]] or ""))


def problems(build: Path) -> list[str]:
    """Every external or missing resource a built page loads, as 'page: <tag> url (why)'."""
    out = []
    root = build.resolve()
    for page in sorted(build.rglob("*.html")):
        if page.relative_to(build).parts[0] in ("_static", "_sources"):
            continue  # theme templates and copied sources, not pages
        parser = _Loads()
        parser.feed(page.read_text(errors="replace"))
        for tag, url in parser.urls:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                out.append(f"{page.relative_to(build)}: <{tag}> {url} (outside the build)")
            elif parts.scheme in ("", "file") and parts.path:
                target = (page.parent / unquote(parts.path)).resolve()
                if not target.is_relative_to(root):
                    out.append(f"{page.relative_to(build)}: <{tag}> {url} (outside the build)")
                elif not target.exists():
                    out.append(f"{page.relative_to(build)}: <{tag}> {url} (missing)")
    return out


def main(argv: list[str]) -> int:
    build = Path(argv[1] if len(argv) > 1 else "_build/html")
    if not (build / "index.html").is_file():
        print(f"no built book at {build}: run `make html` first", file=sys.stderr)
        return 2
    found = problems(build)
    pages = len([p for p in build.rglob("*.html") if p.relative_to(build).parts[0] not in ("_static", "_sources")])
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(f"{len(found)} resources of {pages} pages load from outside {build} or are missing", file=sys.stderr)
        return 1
    print(f"offline check: {pages} pages load nothing from outside {build}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
