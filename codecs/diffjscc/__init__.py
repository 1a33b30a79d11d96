"""DiffJSCC (Yang, Liu, Wang, Kim): a deep-JSCC decode refined by a conditional diffusion model.

Stage 1 is any linksim JSCC (default: the x16 ResNet JSCC, :mod:`linksim.codecs.jscc.resnet`);
stage 2 is either the embedded pixel-space conditional DDPM (:mod:`.pixel`, trained by
:mod:`.training`) or Stable Diffusion 2.1-base with a control network (:mod:`.sd`, user-supplied
weights). :mod:`.method` is ``kind: diffjscc``; :mod:`.colorfix` the wavelet colour fix.
"""
