"""The PyTorch engine of FuseMix training, under the scikit-learn face.

Public building blocks:

- :mod:`skfusemix.engine.nn`: the fusion adapter and its residual block.
- :mod:`skfusemix.engine.losses`: the contrastive objectives.
- :mod:`skfusemix.engine.mixing`: FuseMix, latent mixup with one shared
  coefficient for both modalities.

Internal pieces, one concept each: ``_plan`` (the resolved plan of a fit and
its memory estimate), ``_batches`` (device-resident or streamed batch
sources), ``_loop`` (the training loop) and ``_checkpoint`` (resumable
training state).  :class:`skfusemix.FuseMixAligner` validates the data,
builds the plan and calls the loop; nothing here knows about scikit-learn.
"""
