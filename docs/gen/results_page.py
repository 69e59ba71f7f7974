"""The site's "Published results" page: results/README.md as it is in the repository, its links made to
resolve in the site (docs/hooks.py builds it each time the site is built).

A relative link of results/README.md names a file of the repository: one inside docs/ is pointed at its
page in the site; any other that exists (results/img/*.png, ...) is copied into the built site at its
path in the repository and the link pointed there; one that does not exist is left as written, so the
strict build fails on it, naming the file, as it would on any page's broken link.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

PAGE = "results.md"
SOURCE = Path("results/README.md")  # in the repository

# [text](target "title"), ![alt](target), and src="target" / href="target" in inline HTML
_MD_LINK = re.compile(r"(\]\()(<[^>]*>|[^)\s]+)((?:\s+\"[^\"]*\")?\))")
_HTML_LINK = re.compile(r"""(\b(?:src|href)=")([^"]+)(")""")
_REF_LINK = re.compile(r"^(\s{0,3}\[[^\]]+\]:\s+)(\S+)(.*)$", re.M)


def results_page(repo: Path, docs_dir: Path) -> tuple[str, dict[str, Path]]:
    """(the page's Markdown, {site path of each repository file it links to: the file to copy there})."""
    source = repo / SOURCE
    copies: dict[str, Path] = {}

    def rewrite(m: re.Match) -> str:
        target = m.group(2)
        bare = target.strip("<>")
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", bare, re.I):  # a URL, an anchor of this page, an absolute path
            return m.group(0)
        path, _, anchor = bare.partition("#")
        in_repo = posixpath.normpath(posixpath.join(SOURCE.parent.as_posix(), path))
        docs_rel = docs_dir.resolve().relative_to(repo.resolve()).as_posix()
        if in_repo == SOURCE.as_posix():
            new = PAGE
        elif in_repo.startswith(docs_rel + "/"):
            new = in_repo[len(docs_rel) + 1:]
        else:
            new = in_repo
            if (repo / in_repo).is_file():
                copies[in_repo] = repo / in_repo
        return m.group(1) + new + (f"#{anchor}" if anchor else "") + m.group(3)

    text = source.read_text(encoding="utf-8")
    for pattern in (_MD_LINK, _HTML_LINK, _REF_LINK):
        text = pattern.sub(rewrite, text)
    return text, copies
