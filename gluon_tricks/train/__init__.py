"""The classification trainer (paper §2-§5): ``config`` (TrainConfig and its recipes),
``loop`` (the run, read as the paper), ``step`` (one update), ``metrics``, ``nets`` (student
and teacher), the tricks (``losses``, ``mixup``, ``loss_scale``, ``optim``) and
``selfcheck`` (the GPU self-check)."""
