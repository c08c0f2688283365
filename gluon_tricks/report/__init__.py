"""Reports from run folders and checkpoints: the paper's Figures 3 and 4, results tables
against the paper's numbers and the miniature ablation.

``runs`` reads run folders (through :class:`gluon_tricks.run.folder.RunFolder`), ``figures``
draws, ``tables`` writes Markdown, ``logit_gap`` computes Figure 4, ``ablation`` plans and
collects the miniature Table 6. Configurations are read with the trainers' own resolvers,
so that old run folders read as new ones; the command lines under ``tools/`` are thin
wrappers.
"""
