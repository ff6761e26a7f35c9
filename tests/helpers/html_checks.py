"""Stdlib-only checks of rendered HTML: balanced tags, headings, links, images."""

from __future__ import annotations

import base64
import struct
from html.parser import HTMLParser

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class StructureChecker(HTMLParser):
    """Record tag balance problems, headings, ids, URLs and embedded images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.headings: list[str] = []
        self.ids: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.img_srcs: list[str] = []
        self.tags: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Push non-void elements; collect ids, URLs and headings."""
        self._attrs(tag, attrs)
        if tag in {"h1", "h2", "h3"}:
            self._heading = []
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Self-closing elements (SVG children) need no end tag."""
        self._attrs(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        """Pop the matching element or record a problem."""
        if tag in VOID_ELEMENTS:
            self.problems.append(f"end tag for void element </{tag}>")
            return
        if not self.stack:
            self.problems.append(f"unexpected </{tag}> with no open element")
            return
        top = self.stack.pop()
        if top != tag:
            self.problems.append(f"</{tag}> closes <{top}>")
        if tag in {"h1", "h2", "h3"} and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None

    def handle_data(self, data: str) -> None:
        """Collect heading text."""
        if self._heading is not None:
            self._heading.append(data)

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id" and value is not None:
                self.ids.append(value)
            if name in {"src", "href", "xlink:href", "action", "data"} and value is not None:
                self.urls.append((tag, name, value))
            if tag == "img" and name == "src" and value is not None:
                self.img_srcs.append(value)


def check_html(html: str) -> StructureChecker:
    """Parse ``html`` and return the checker (asserting nothing itself)."""
    checker = StructureChecker()
    checker.feed(html)
    checker.close()
    return checker


def png_info(data_uri: str) -> tuple[int, int, float | None]:
    """Width, height (px) and DPI (from the pHYs chunk, if any) of a PNG data URI."""
    raw = base64.b64decode(data_uri.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    dpi = None
    pos = 8
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        kind = raw[pos + 4 : pos + 8]
        if kind == b"pHYs":
            ppu_x, _ppu_y, unit = struct.unpack(">IIB", raw[pos + 8 : pos + 17])
            if unit == 1:
                dpi = ppu_x * 0.0254
        if kind == b"IEND":
            break
        pos += 12 + length
    return width, height, dpi
