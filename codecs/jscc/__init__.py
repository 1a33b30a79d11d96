"""Neural joint source-channel coding: ADJSCC (attention DeepJSCC), its training, the embedded
weights trained by the project and a loader for the public ADJSCC checkpoints."""

from .adjscc import ADJSCC, ADJSCCConfig, awgn_channel, load_embedded, save_model
from .checkpoint import load_model

__all__ = ["ADJSCC", "ADJSCCConfig", "awgn_channel", "load_embedded", "load_model", "save_model"]
