"""Lazy reading of TIFF / OME-TIFF movies in chunks of frames (tifffile).

A 50 GB acquisition never has to fit in memory: frames are read page by page as the
localizer asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from pointillist.core.errors import FormatError


class TiffMovie:
    """A TIFF/OME-TIFF stack of 2-D frames, read lazily; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
        except FileNotFoundError:
            raise FormatError(self.path, "no such file") from None
        except (tifffile.TiffFileError, OSError, ValueError) as exc:
            raise FormatError(self.path, f"not a readable TIFF: {exc}") from None
        series = self._tif.series[0] if self._tif.series else None
        if series is None or len(series.shape) < 2:
            self.close()
            raise FormatError(self.path, "no image series in the file")
        self.height, self.width = (int(s) for s in series.shape[-2:])
        self.n_frames = (
            int(np.prod(series.shape[:-2], dtype=np.int64)) if len(series.shape) > 2 else 1
        )
        self.dtype = np.dtype(series.dtype)
        if self.dtype.kind not in "ui":
            self.close()
            raise FormatError(self.path, f"expected integer camera counts, got {self.dtype}")
        self._pages = series.pages
        if len(self._pages) != self.n_frames:  # e.g. several frames stored in one page
            self._pages = None

    def chunks(self, chunk_frames: int = 100) -> Iterator[tuple[int, np.ndarray]]:
        """(first_frame, frames (n, H, W) uint16) for consecutive chunks of the movie."""
        for start in range(0, self.n_frames, chunk_frames):
            stop = min(start + chunk_frames, self.n_frames)
            try:
                if self._pages is not None:
                    frames = np.stack([self._pages[i].asarray() for i in range(start, stop)])
                else:
                    frames = (
                        self._tif.series[0]
                        .asarray()
                        .reshape(-1, self.height, self.width)[start:stop]
                    )
            except (tifffile.TiffFileError, OSError, ValueError) as exc:
                raise FormatError(self.path, f"frames {start}..{stop - 1}: {exc}") from None
            yield start, frames.astype(np.uint16, copy=False)

    def close(self) -> None:
        self._tif.close()

    def __enter__(self) -> TiffMovie:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
