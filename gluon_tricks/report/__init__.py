"""Reports from run folders and checkpoints: the paper's Figure 3, results tables against
the paper's numbers, and weights exported to (and imported from) GluonCV.

``runs`` reads run folders, ``figures`` draws, ``tables`` writes Markdown, ``export`` moves
weights to GluonCV and builds its detection/segmentation networks on them (§6). Nothing
here imports the trainer; the command lines under ``tools/`` are thin wrappers.
"""
