"""Neural joint source-channel coding: ADJSCC (attention DeepJSCC), its training, the embedded
weights trained by the project and a loader for the public ADJSCC checkpoints.

The names below are imported on first use (``lazy_loader``), so that the torch-free
:mod:`.settings` (read by the scenario validator) loads without torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "adjscc": ["ADJSCC", "ADJSCCConfig", "awgn_channel", "load_embedded", "save_model"],
    "checkpoint": ["load_model", "load_jscc"],
})
