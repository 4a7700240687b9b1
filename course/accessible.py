"""Small repairs of the theme's HTML that an accessibility audit (axe-core, WCAG 2.1 AA) asks for.

``course/sphinx_offline.py`` applies them to every page while the site is written:

- :func:`name_nav_toggles`: the sidebar's expand/collapse toggles (a ``<summary>`` holding only a chevron
  icon, written by pydata-sphinx-theme) get a name from the chapter they open, e.g. "Sections of
  Chapter 1 — A lookup table is hard attention" (axe rule ``summary-name``).
- :func:`fix_citation_roles`: the bibliography's entries, ``role="doc-biblioentry"`` inside a
  ``role="list"`` (docutils), become ``role="listitem"``: the DPUB role is deprecated and a list must
  hold list items (axe rules ``aria-deprecated-role``, ``aria-required-children``).
"""

from __future__ import annotations

import html
import re

# A link, its text (no other link inside), then the <details> whose <summary> toggles its sections.
_TOGGLE = re.compile(r"(<a\b[^>]*>(?P<text>(?:(?!</?a\b).)*)</a>\s*<details\b[^>]*>\s*)<summary>", re.S)
_TAG = re.compile(r"<[^>]+>")


def name_nav_toggles(nav: str) -> str:
    """``nav`` (the sidebar's HTML) with each chevron-only ``<summary>`` named after the link before it."""

    def named(match: re.Match) -> str:
        text = " ".join(html.unescape(_TAG.sub("", match.group("text"))).split())
        return f'{match.group(1)}<summary aria-label="{html.escape(f"Sections of {text}")}">'

    return _TOGGLE.sub(named, nav)


def fix_citation_roles(body: str) -> str:
    """``body`` with the bibliography entries' deprecated ``doc-biblioentry`` role replaced by ``listitem``."""
    return body.replace('role="doc-biblioentry"', 'role="listitem"')
