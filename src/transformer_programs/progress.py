"""Progress of long work (training, simplifying and proving a program, pruning, sweeps): a bar on
a terminal, a line every few seconds elsewhere (a log file, a notebook), nothing when quiet."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LINE_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal


class Progress:
    """Counts steps of one piece of work (`total` of them, or an unknown number) and shows them."""

    def __init__(self, what: str, total: int | None, quiet: bool = False, initial: int = 0):
        self.what, self.total, self.done, self.quiet = what, total, initial, quiet
        self.started = self.shown = time.monotonic()
        self.note = ""
        self.bar = tqdm(total=total, initial=initial, desc=what, leave=False) if not quiet and sys.stderr.isatty() else None

    def update(self, steps: int = 1, note: str | None = None) -> None:
        """`steps` more done; `note` (a current best, say) shown beside the count."""
        self.done += steps
        self.note = self.note if note is None else note
        if self.bar is not None:
            self.bar.update(steps)
            if note is not None:
                self.bar.set_postfix_str(note)
        elif not self.quiet and time.monotonic() - self.shown >= LINE_EVERY:
            self.shown = time.monotonic()
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        """The progress in one line: what, how far, how long so far, the note."""
        count = f"{self.done:,} of {self.total:,} ({100 * self.done / max(self.total, 1):.0f}%)" \
            if self.total is not None else f"{self.done:,}"
        note = f"; {self.note}" if self.note else ""
        return f"{self.what}: {count}, {time.monotonic() - self.started:.0f} s{note}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exception) -> None:
        self.close()
