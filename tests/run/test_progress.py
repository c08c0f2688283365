"""The progress lines of both trainers' epochs: when they come (every log_interval batches,
and at the quarters of an epoch shorter than 4 intervals: a closed form), what they hold,
and one read of the mean loss (the host synchronisation) per line, none between."""
import pytest

from gluon_tricks.run.progress import Progress, logs_progress


def quarters(batches_per_epoch):
    """The batches where each quarter of the epoch is complete: ceil(k n / 4)."""
    return {-(-k * batches_per_epoch // 4) for k in (1, 2, 3, 4)}


@pytest.mark.parametrize("batches_per_epoch, log_interval", [
    (6, 50), (3, 50), (1, 5), (10, 3), (11, 3), (12, 3), (13, 3), (400, 50), (7, 1)])
def test_lines_every_interval_and_at_the_quarters_of_a_short_epoch(batches_per_epoch,
                                                                   log_interval):
    every = set(range(log_interval, batches_per_epoch + 1, log_interval))
    short = batches_per_epoch < 4 * log_interval
    expected = every | quarters(batches_per_epoch) if short else every
    assert {b for b in range(1, batches_per_epoch + 1)
            if logs_progress(b, batches_per_epoch, log_interval)} == expected


class Log:
    def __init__(self):
        self.lines, self.records = [], []

    def info(self, msg, *args):
        self.lines.append(msg % args)

    def record(self, **fields):
        self.records.append(fields)


def test_each_line_follows_its_batch_with_one_read_of_the_loss():
    log, reads = Log(), []
    progress = Progress(log, epoch=2, batches_per_epoch=10, log_interval=3, batch_size=16)
    losses = []
    for batch_index, batch in progress.log_every(iter("abcdefghij")):
        assert batch == "abcdefghij"[batch_index - 1]
        losses.append(1.0 / batch_index)
        mean = sum(losses) / len(losses)
        progress.update(0.1 * batch_index, lambda mean=mean: reads.append(mean) or mean)
    logged = [3, 5, 6, 8, 9, 10]  # every 3, and the quarters 3, 5, 8, 10
    assert [r["batch"] for r in log.records] == logged and len(reads) == len(logged)
    for record, line, b in zip(log.records, log.lines, logged):
        mean = sum(1.0 / i for i in range(1, b + 1)) / b
        assert record["epoch"] == 3 and record["type"] == "interval"
        assert record["lr"] == pytest.approx(0.1 * b) and record["train_loss"] == mean
        assert record["samples_per_sec"] > 0
        assert line.startswith(f"epoch 3 batch {b}/10 lr {0.1 * b:.5g} loss {mean:.4f} ")
        assert line.endswith(" samples/s")
