"""The input shape ``torchspec import`` assumes when ``--input`` is not given, read from the model.

The first layer holding weights (in the order the model registered its modules) says how many
channels or features a sample has; the other sizes are the usual ones for that kind of model:
images 224x224 (or the model's own ``image_size``, as torchvision's ViT keeps it), video clips of
16 frames of 112x112 (C3D, torchvision's video models), a vector of ``in_features``. Where a size
cannot be read (a sequence's length, an audio clip's, token ids) it is an error asking for
``--input``: a guess there would be a spec of the wrong model.
"""

from __future__ import annotations

from torch import nn

from torchspec.importing.errors import ImportFailure

__all__ = ["guess_input"]

IMAGE = 224  # torchvision's classifiers' crop
CLIP = (16, 112, 112)  # frames, height, width: C3D's and torchvision's video models' clips


def guess_input(model: nn.Module) -> tuple[list[int], str]:
    """``([3, 224, 224], "conv1 (Conv2d, 3 input channels)")``: a sample shape and where it came from."""
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            size = getattr(model, "image_size", IMAGE)
            side = size if isinstance(size, int) and size > 0 else IMAGE
            return [module.in_channels, side, side], _said(
                path, module, f"{module.in_channels} input channels"
            )
        if isinstance(module, nn.Conv3d | nn.ConvTranspose3d):
            return [module.in_channels, *CLIP], _said(path, module, f"{module.in_channels} input channels")
        if isinstance(module, nn.Linear | nn.Bilinear):
            features = module.in_features if isinstance(module, nn.Linear) else module.in1_features
            return [features], _said(path, module, f"{features} input features")
        if isinstance(
            module, nn.Conv1d | nn.RNNBase | nn.Embedding | nn.EmbeddingBag | nn.MultiheadAttention
        ):
            raise ImportFailure(
                f"no --input, and the model's first layer {_said(path, module, '')} does not say how long "
                "its sequences are",
                hints=[
                    "give the shape of one sample, e.g. --input 64,100 (channels, length) or "
                    "--input 100 --ids 30000 (100 token ids below 30000)"
                ],
            )
    raise ImportFailure(
        "no --input, and the model has no layer with weights to read the input's size from",
        hints=["give the shape of one sample without the batch: --input 3,224,224"],
    )


def _said(path: str, module: nn.Module, what: str) -> str:
    detail = f", {what}" if what else ""
    return f"{path or '<model>'} ({type(module).__name__}{detail})"
