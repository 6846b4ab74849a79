"""Temporal context across batch boundaries for multi-frame localizers.

A CNN that looks at frames t−k..t+k can only localize frame t once frame t+k has arrived.
`FrameWindow` receives batches of consecutive frames (from a file reader or the bus) and
releases `Chunk`s: the frames that can be localized now, with the k frames before and after
them as context. The last k frames of a batch are held until the next batch arrives, or
until `flush()` (end of acquisition, a gap in frame numbers, or a timeout), when the
missing context is replaced by edge replication, as at the ends of a movie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointillist.core.errors import InvalidInput


@dataclass(frozen=True)
class Chunk:
    """Frames [first_frame, first_frame + n) with ``context`` frames on each side.

    ``padded`` is the (n + 2·context, H, W) stack the localizer runs on; frames that do not
    exist (start/end of the movie, or context lost at a flush) are replicated edge frames.
    """

    first_frame: int
    padded: np.ndarray
    context: int

    @property
    def n_frames(self) -> int:
        return self.padded.shape[0] - 2 * self.context

    @property
    def frames(self) -> np.ndarray:
        return self.padded[self.context : self.context + self.n_frames]


def _pad(stack: np.ndarray, before: int, after: int) -> np.ndarray:
    """Replicate the first/last frame to add ``before``/``after`` frames."""
    parts = [np.repeat(stack[:1], before, axis=0), stack, np.repeat(stack[-1:], after, axis=0)]
    return np.concatenate(parts) if before or after else stack


class FrameWindow:
    """Holds the frames a multi-frame localizer still needs (see module docstring)."""

    def __init__(self, context: int = 1) -> None:
        if context < 0:
            raise InvalidInput(f"context must be >= 0, got {context}")
        self.context = context
        self._before: np.ndarray | None = None  # up to `context` frames already released
        self._held: np.ndarray | None = None  # frames not yet released
        self._held_first = 0

    @property
    def held_first_frame(self) -> int | None:
        """Index of the first frame not yet released (None when nothing is held)."""
        return None if self._held is None else self._held_first

    def push(self, frames: np.ndarray, first_frame: int) -> list[Chunk]:
        """Add consecutive frames (n, H, W) starting at ``first_frame``; return ready chunks."""
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[0] == 0:
            raise InvalidInput(f"frames must be a non-empty (n, H, W) stack, got {frames.shape}")
        out: list[Chunk] = []
        if self._held is not None:
            expected = self._held_first + len(self._held)
            if first_frame != expected or frames.shape[1:] != self._held.shape[1:]:
                out += self.flush()  # a gap or a new geometry: finish what we have first
        if self._held is None:
            self._held, self._held_first = frames, first_frame
            if (
                first_frame == 0
                or self._before is None
                or self._before.shape[1:] != frames.shape[1:]
            ):
                self._before = None
        else:
            self._held = np.concatenate([self._held, frames])
        k = self.context
        ready = len(self._held) - k
        if ready > 0:
            out.append(self._release(ready, after=self._held[ready : ready + k]))
        return out

    def flush(self, keep_context: bool = False) -> list[Chunk]:
        """Release everything held, replicating edge frames for the missing future context.

        ``keep_context``: remember the last frames as past context for the next push (a
        stream that must not hold frames back, e.g. a bus consumer that acks each batch).
        """
        if self._held is None:
            return []
        chunk = self._release(len(self._held), after=self._held[:0])
        if not keep_context:
            self._before = None
        return [chunk]

    def _release(self, n: int, after: np.ndarray) -> Chunk:
        k = self.context
        assert self._held is not None
        frames = self._held[:n]
        before = self._before if self._before is not None else frames[:0]
        stack = np.concatenate([before, frames, after])
        padded = _pad(stack, k - len(before), k - len(after))
        chunk = Chunk(self._held_first, padded, k)
        tail = np.concatenate([before, frames])[-k:] if k else frames[:0]
        self._before = tail
        rest = self._held[n:]
        self._held_first += n
        self._held = rest if len(rest) else None
        return chunk
