"""Reports from run folders and checkpoints: the paper's Figures 3 and 4, results tables
against the paper's numbers, the miniature ablation, and weights exported to (and imported
from) GluonCV.

``runs`` reads run folders (through :class:`gluon_tricks.runfolder.RunFolder`), ``figures``
draws, ``tables`` writes Markdown, ``logit_gap`` computes Figure 4, ``ablation`` plans and
collects the miniature Table 6, ``export`` moves weights to GluonCV and builds its
detection/segmentation networks on them (§6). Configurations are read with the trainer's
own resolver (``gluon_tricks.train.config``), so that old run folders read as new ones; the
command lines under ``tools/`` are thin wrappers.
"""
