"""Reports as Markdown + HTML with PNG figures, written to a folder.

Figures are matplotlib figures rendered with the Agg backend, so no display is needed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from pointillist.core.render import RenderedImage


@dataclass
class Report:
    """Collects sections, then ``write()`` produces report.md, report.html and the PNGs."""

    title: str
    out_dir: Path
    _blocks: list[tuple[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def heading(self, text: str) -> None:
        self._blocks.append(("heading", text))

    def text(self, text: str) -> None:
        self._blocks.append(("text", text))

    def table(self, rows: list[dict[str, object]]) -> None:
        """A table from a list of dicts sharing keys (the header)."""
        if rows:
            self._blocks.append(("table", rows))

    def figure(self, fig: Figure, name: str, caption: str) -> Path:
        """Save ``fig`` as ``<name>.png`` in the report folder and close it."""
        path = self.out_dir / f"{name}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        self._blocks.append(("figure", (path.name, caption)))
        return path

    def rendering(
        self,
        img: RenderedImage,
        name: str,
        caption: str,
        *,
        flip_y: bool = False,
        saturate_percentile: float = 99.5,
    ) -> Path:
        """A super-resolution image in nm axes (hot colour map, top percentile saturated);
        ``flip_y`` puts y = 0 at the top, as camera frames are shown."""
        fig, ax = plt.subplots(figsize=(6, 6))
        left, right, bottom, top = img.extent_nm
        ax.imshow(
            img.image,
            origin="upper" if flip_y else "lower",
            extent=(left, right, top, bottom) if flip_y else img.extent_nm,
            cmap="hot",
            vmax=float(np.percentile(img.image, saturate_percentile)) or None,
        )
        ax.set_xlabel("x [nm]")
        ax.set_ylabel("y [nm]")
        return self.figure(fig, name, caption)

    def write(self) -> Path:
        """Write report.md and report.html; returns the Markdown path."""
        md = [f"# {self.title}", ""]
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, value in self._blocks:
            if kind == "heading":
                md += [f"## {value}", ""]
                body.append(f"<h2>{html.escape(str(value))}</h2>")
            elif kind == "text":
                md += [str(value), ""]
                body.append(f"<p>{html.escape(str(value))}</p>")
            elif kind == "table":
                keys = list(value[0])
                md.append("| " + " | ".join(keys) + " |")
                md.append("|" + "---|" * len(keys))
                md += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in value]
                md.append("")
                head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
                rows = "".join(
                    "<tr>"
                    + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in keys)
                    + "</tr>"
                    for r in value
                )
                body.append(f"<table border='1' cellpadding='4'><tr>{head}</tr>{rows}</table>")
            else:
                name, caption = value
                md += [f"![{caption}]({name})", "", f"*{caption}*", ""]
                body.append(
                    f"<figure><img src='{html.escape(name)}' style='max-width:100%'>"
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        md_path = self.out_dir / "report.md"
        md_path.write_text("\n".join(md))
        (self.out_dir / "report.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title></head><body>"
            + "\n".join(body)
            + "</body></html>"
        )
        return md_path
