"""mkdocs hooks (mkdocs.yml `hooks:`): the pages written at build time, so they cannot drift from the code.

reference/*.md come from the typed config and the registries (docs/gen/reference_pages.py); results.md is
results/README.md with its links made to resolve in the site (docs/gen/results_page.py). Nothing is
written into docs/: the pages and the images they need exist only in the build.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent / "gen"))

from reference_pages import reference_pages  # noqa: E402
from results_page import PAGE, results_page  # noqa: E402


def on_files(files: Files, config) -> Files:
    docs_dir = Path(config["docs_dir"])
    repo = Path(config["config_file_path"]).resolve().parent
    text, copies = results_page(repo, docs_dir)
    generated = {**reference_pages(), PAGE: text}
    for uri, content in generated.items():
        if files.get_file_from_path(uri) is not None:
            raise PluginError(f"docs/{uri} is written at build time (docs/hooks.py); delete the file from docs/")
        files.append(File.generated(config, uri, content=content))
    for uri, path in copies.items():
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
