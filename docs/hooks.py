"""MkDocs hook: the alert runbooks are published from where they live (alerts/runbooks/), not
copied into docs/, so the site and the dashboard's Runbooks page show the same text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

RUNBOOKS = Path(__file__).resolve().parents[1] / "alerts" / "runbooks"


def on_files(files: Files, config: Any) -> Files:
    names = sorted(p.stem for p in RUNBOOKS.glob("*.md"))
    index = ["# Runbooks", "", "What each alert means and what to do. The dashboard serves the "
             "same pages at `/runbooks?alert=<name>`, where every alert links.", ""]
    index += [f"- [{name}]({name}.md)" for name in names]
    files.append(File.generated(config, "runbooks/index.md", content="\n".join(index) + "\n"))
    for name in names:
        files.append(File.generated(config, f"runbooks/{name}.md",
                                    content=(RUNBOOKS / f"{name}.md").read_text()))
    return files
