"""Training a spec: the ``train`` section (:mod:`.config`), data sources, the loop, checkpoints.

``torchspec.train(spec_or_path, overrides=[...])`` (:func:`torchspec.training.loop.train`) runs
training and returns the metrics history. The submodules other than :mod:`.config`,
:mod:`.validate` and :mod:`.overrides` import torch.
"""
