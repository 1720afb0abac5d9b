"""Progress where there is no terminal: flushed lines with elapsed and remaining time, one per epoch."""

from __future__ import annotations

import io

from zoo.progress import BarProgress, LineProgress, auto_progress, clock


class Recorder(io.StringIO):
    """A stream that counts flushes: a line that is not flushed is not seen in a log until the end."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_a_line_per_epoch_with_elapsed_and_remaining_time_each_flushed():
    stream = Recorder()
    progress = LineProgress(stream, every_s=3600)
    progress.start("training unet2d", 12)
    for epoch in (1, 2, 3):
        for _ in range(4):
            progress.advance(1, epoch=epoch, loss=0.5)
    progress.finish()
    lines = stream.getvalue().splitlines()
    epoch_lines = [line for line in lines if "epoch" in line and "done" in line]
    assert [line.split("epoch ")[1].split(" ")[0] for line in epoch_lines] == ["1", "2"]
    assert all("elapsed" in line and "remaining" in line for line in epoch_lines)
    assert lines[-1].startswith("training unet2d: done, 12/12 (100%)")
    assert stream.flushes == len(lines)


def test_long_epochs_still_give_a_line_at_every_tenth():
    stream = Recorder()
    progress = LineProgress(stream, every_s=3600)
    progress.start("predicting", 100)
    for _ in range(100):
        progress.advance(1)
    progress.finish()
    progress_lines = [line for line in stream.getvalue().splitlines() if "%)" in line and "done" not in line]
    assert len(progress_lines) == 10
    assert "10/100 (10%)" in progress_lines[0]


def test_a_step_of_zero_names_the_running_item_without_a_line():
    stream = Recorder()
    progress = LineProgress(stream, every_s=3600)
    progress.start("exporting", 2)
    progress.advance(0, format="onnx (running)")
    assert stream.getvalue().count("\n") == 1  # only the start line
    progress.advance(1, format="onnx done")
    assert "format onnx done" in stream.getvalue().splitlines()[-1]


def test_auto_progress_draws_lines_into_files_and_pipes():
    assert isinstance(auto_progress(io.StringIO()), LineProgress)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(auto_progress(Terminal()), BarProgress)


def test_clock():
    assert (clock(7), clock(205), clock(3723)) == ("0:07", "3:25", "1:02:03")
