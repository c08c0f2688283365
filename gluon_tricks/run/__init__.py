"""The run layer both trainers share: ``recipe`` (the recipe engine: schemas, ``base:``
chains, ``--set``, one-line errors, resume rules), ``folder`` (the run folder's layout,
atomic writes, lock and configuration), ``checkpoints`` (save, keep, load), ``epoch_log``
(log.jsonl), ``lifecycle`` (open, start, resume and end an epoch of a run), ``schedule``
(the learning rate per update), ``parallel`` (one process or a Horovod rank) and
``optimizer_state`` (an optimizer's state on disk, without pickle)."""
