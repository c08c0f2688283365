"""The command-line layer: parse flags, set up the process (OpenMP threads, MXNet's engine),
call one library entry point, and turn a user's mistake into one line on stderr (exit 2).

``train`` is ``recipes/train_imagenet.py``, ``transfer`` is ``tools/transfer.py``;
``common`` holds the flags and set-up every command that trains into a run folder shares,
and the flags that say which weights a tool uses. Nothing below this layer reads argv.
"""
