"""The diffusion-posterior-sampling loop shared by the DiffCom receivers.

One guided ancestral step (DPS, Chung et al.; DiffCom, Wang et al.) from step ``t`` to the next
visited step ``s``::

    ε = prior.eps(x_t, t)                               1 NFE
    x̂0 = clip(prior.predict_x0(x_t, t, ε), −1, 1)       Tweedie
    x'_s = μ̃(x̂0, x_t) + σ_t·z                          DDPM posterior q(x_s | x_t, x̂0)
    x_s = x'_s − lr·∇_{x_t} loss(x̂0)                    loss = subclass guide(), e.g. ζ·‖y − A(x̂0)‖₂

**Schedule.** The visited steps (all ``T``, a stride, or HiFi's ``t_start … 0``) define a
respaced chain (:meth:`~linksim.codecs.diffusion.prior.Prior.on_steps`, ADM
``SpacedDiffusion``): ``β'_k = 1 − ᾱ_{t_k}/ᾱ_{t_{k−1}}``, the posterior mean and variance from
``β'``, and a learned variance re-interpolated between the respaced ``β'`` and ``β̃'``. On
consecutive steps that is the original chain. The posterior mean always uses the *clipped* x̂0.

**Last step.** The final step (to ``t = −1``, i.e. x0) applies no guidance: it returns the
unguided posterior mean (= the clipped x̂0), as the reference code does.

**Measurement** (``measurement``): ``"received"`` (default, the DiffCom reference): ``y`` = the
received, *un-equalised* samples on the data positions ``Y_data`` and ``A(x) = Ĥ ⊙ X(x)``
(:meth:`~linksim.phy.chains.ChannelState.forward_received`: JSCC encoder -> unit power ->
interleaver -> the link's data REs, clipping included; Ĥ the link's estimate, 1 on AWGN, the
true gain on flat Rayleigh). With white noise on ``Y`` this is the likelihood; it weights RE k
by ``|Ĥ_k|``. ``"equalised"`` (a linksim variant, not the reference): ``y`` = the equalised
symbols and ``A`` = :meth:`~linksim.phy.chains.ChannelState.forward_operator` (same equaliser),
each residual scaled by the MMSE bias ``1/(1 + no_eff)`` (AWGN: 1). All images of a batch are
sampled together; the loss is a sum of per-image terms, so each image's gradient is its own.

Subclasses (:class:`~linksim.codecs.diffusion.diffcom.DiffCom`,
:class:`~linksim.codecs.diffusion.hifi.HiFiDiffCom`,
:class:`~linksim.codecs.diffusion.blind.BlindDiffCom`) override :meth:`DiffusionReceiver.guide`
and, where needed, :meth:`~DiffusionReceiver.timesteps`, :meth:`~DiffusionReceiver.init`,
:meth:`~DiffusionReceiver.learning_rate` and the auxiliary-variable hooks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch

from linksim.phy.validation import check_one_of

from ..base import Decoded, Receiver, RxSignal

__all__ = ["MEASUREMENTS", "spaced_steps", "SampleResult", "MeasurementContext", "DiffusionReceiver"]


@dataclass
class MeasurementContext:
    """What the guidance of one decode works with (built once by :meth:`DiffusionReceiver.prepare`).

    :param y: the measurement the residual compares against, ``[B, N]`` complex (Blind
        ``pilot_aided``: the whole received grid ``[B, F, S, M]``)
    :param state: the :class:`linksim.phy.chains.ChannelState` of the transmission
    :param y_eq: ``[B, N]`` the equalised symbols
    :param no_eff: ``[B, N]`` effective noise variance of ``y_eq`` (``None``: not reported)
    :param tx_scale: the transmitter's power scale (external ADJSCC weights), else ``None``
    :param weight: per-symbol residual weight ``[B, N]`` (``None`` = 1)
    :param aux_x0: the clean estimates of the auxiliary variables at the current step
        (Blind-DiffCom's taps ``{"h": [B, L]}``), set by :meth:`DiffusionReceiver.sample`
    """

    y: Any
    state: Any
    y_eq: Any = None
    no_eff: Any = None
    tx_scale: Any = None
    weight: Any = None
    aux_x0: dict | None = None

    @property
    def batch(self) -> int:
        """``B``, the number of images decoded together."""
        return self.y.shape[0]

#: what the guidance residual compares (see the module doc)
MEASUREMENTS = ("received", "equalised")


def spaced_steps(t_start: int, num_steps: int) -> list[int]:
    """``num_steps`` distinct integer steps from ``t_start`` down to 0 (inclusive), evenly spaced.

    >>> spaced_steps(999, 4)
    [999, 666, 333, 0]
    """
    t_start, num_steps = int(t_start), int(num_steps)
    if t_start < 0 or num_steps < 1:
        raise ValueError(f"need t_start >= 0 and num_steps >= 1; got {t_start}, {num_steps}")
    num_steps = min(num_steps, t_start + 1)
    if num_steps == 1:
        return [t_start]
    steps = torch.linspace(t_start, 0, num_steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(steps), reverse=True)


@dataclass
class SampleResult:
    """Output of :meth:`DiffusionReceiver.sample`.

    :param x0: ``[B, 3, H, W]`` final sample in ``[-1, 1]``
    :param nfe: prior evaluations per image (= steps taken)
    :param trace: per-step metrics (``{"t": [...], "loss": [[B], ...]}``, guided steps only) when
        recording, else empty
    :param aux: final auxiliary variables (e.g. Blind-DiffCom's channel taps)
    """

    x0: torch.Tensor
    nfe: int
    trace: dict = field(default_factory=dict)
    aux: dict = field(default_factory=dict)


class DiffusionReceiver(Receiver):
    """Guided ancestral sampling with a pixel-space prior and a JSCC forward operator.

    :param prior: :class:`~linksim.codecs.diffusion.prior.Prior` (``num_timesteps``,
        ``alphas_cumprod`` ``[T]``, ``on_steps``, ``model_output``, ``predict_x0``,
        ``posterior_mean_variance``, ``reverse_variance``; images in ``[-1, 1]``)
    :param jscc: frozen ADJSCC (``encode(images [0,1], csnr_db)`` -> ``[B, N]`` complex and
        ``decode(y, csnr_db, no_eff, image_size, tx_scale)``), or ``None`` when a subclass needs none
    :param csnr_db: nominal CSNR [dB] fed to the JSCC AF modules
    :param image_shape: ``(H, W)``
    :param num_steps: number of (strided) steps from the start to 0; ``None`` = every step
    :param zeta: ζ, weight of the measurement term
    :param lr: guidance step size (constant; subclasses may schedule it)
    :param autocast: run the prior under ``torch.autocast`` (bfloat16 on CPU, float16 on CUDA)
    :param record_metrics: keep the per-step loss in :attr:`SampleResult.trace` (off: no cost)
    :param measurement: ``"received"`` (default; the reference: un-equalised data samples vs
        ``Ĥ ⊙ X(x̂0)``) | ``"equalised"`` (linksim variant: MMSE-bias weighted residual of the
        equalised symbols); see the module doc
    """

    def __init__(self, prior, jscc, csnr_db: float, image_shape, *, num_steps: int | None = None,
                 zeta: float = 1.0, lr: float = 1.0, autocast: bool = False, record_metrics: bool = False,
                 measurement: str = "received"):
        self.measurement = check_one_of("measurement", measurement, MEASUREMENTS)
        self.prior = prior
        self.jscc = jscc
        self.csnr_db = float(csnr_db)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.num_steps = num_steps
        self.zeta = float(zeta)
        self.lr = float(lr)
        self.autocast = bool(autocast)
        self.record_metrics = bool(record_metrics)
        self._ac = torch.as_tensor(prior.alphas_cumprod, dtype=torch.float64).cpu()
        if jscc is not None:
            for p in jscc.parameters():
                p.requires_grad_(False)

    # ------------------------------------------------------------------ hooks
    def timesteps(self) -> list[int]:
        """Descending steps to visit (default: from ``T−1``, ``num_steps`` of them)."""
        t_max = len(self._ac) - 1
        return spaced_steps(t_max, self.num_steps or t_max + 1)

    def prepare(self, rx: RxSignal, state) -> MeasurementContext:
        """The :class:`MeasurementContext` of one decode (``measurement: received``: ``y`` = the
        un-equalised data samples; ``equalised``: ``y`` = ``y_eq`` with the MMSE-bias ``weight``)."""
        no_eff = getattr(state, "no_eff", None)
        if self.measurement == "received":
            y, weight = state.received(), None
        else:
            y, weight = rx.y, self.residual_weight(state, no_eff, rx.y)
        return MeasurementContext(y=y, state=state, y_eq=rx.y, no_eff=no_eff,
                                  tx_scale=rx.tx_meta.get("tx_scale"), weight=weight)

    def simulate(self, x_tx: torch.Tensor, ctx: MeasurementContext) -> torch.Tensor:
        """Noise-free ``A`` applied to encoder output ``x_tx`` ``[B, N]``, in the measurement's
        domain (``received``: ``Ĥ ⊙ X``, on-air order; ``equalised``: the chain's equalised
        re-simulation). Differentiable."""
        state = ctx.state
        if self.measurement == "received":
            return state.forward_received(x_tx)
        return state.forward_operator(x_tx)

    def init(self, ctx: MeasurementContext, generator: torch.Generator) -> torch.Tensor:
        """``x`` at the first step (default: pure noise ``N(0, I)``)."""
        b = ctx.y.shape[0]
        return self._randn((b, 3, *self.image_shape), generator, ctx.y.device)

    def init_aux(self, ctx: MeasurementContext, generator: torch.Generator) -> dict:
        """Auxiliary variables diffused alongside ``x`` (default: none)."""
        return {}

    def aux_step(self, aux: dict, grads: dict, t: int, s: int, i: int, n: int, generator) -> dict:
        """Update the auxiliary variables from ``t`` to ``s`` given their loss gradients (``grads``
        is empty on the unguided last step)."""
        return aux

    def aux_x0(self, aux: dict, t: int) -> dict:
        """Differentiable clean estimates of the auxiliary variables (default: none)."""
        return {}

    def learning_rate(self, i: int, n: int) -> float:
        """Guidance step size at step ``i`` of ``n`` (default: constant :attr:`lr`)."""
        return self.lr

    def guide(self, x0_hat: torch.Tensor, ctx: MeasurementContext, step: int) -> torch.Tensor:
        """Per-image guidance loss ``[B]`` of the clean estimate ``x0_hat`` ``[B,3,H,W]`` in [-1,1]."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def residual_weight(self, state, no_eff: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor | None:
        """``measurement: equalised``: per-symbol MMSE-bias weight ``1/(1 + no_eff)`` ``[B, N]``
        on equalised (non-AWGN) links, ``None`` (= 1) on AWGN."""
        if no_eff is None:
            return None
        link = getattr(state, "link", None)
        if getattr(getattr(link, "cfg", None), "kind", None) == "awgn":
            return None
        return (1.0 / (1.0 + no_eff.real.float())).to(y.device).expand(y.shape)

    @staticmethod
    def residual_norm(y_sim: torch.Tensor, ctx: MeasurementContext, weighted: bool = True) -> torch.Tensor:
        """``‖w ⊙ (y − y_sim)‖₂`` per image ``[B]`` over all but the batch dimension (``w`` =
        ``ctx.weight`` when present and ``weighted``, else 1; ``y`` = ``ctx.y``)."""
        r = ctx.y - y_sim
        if weighted and ctx.weight is not None:
            r = r * ctx.weight
        return r.abs().square().flatten(1).sum(-1).sqrt()

    def encode(self, x0_hat: torch.Tensor) -> torch.Tensor:
        """``A``'s first half: the frozen JSCC encoder on ``(x̂0 + 1)/2`` -> ``[B, N]`` complex."""
        return self.jscc.encode((x0_hat + 1) / 2, self.csnr_db)

    def measurement_residual(self, x0: torch.Tensor, ctx: MeasurementContext) -> torch.Tensor:
        """``‖y − A(x0)‖₂`` per image ``[B]`` in the measurement's domain (evaluation; no
        gradient; never weighted, so that receivers compare on one scale)."""
        with torch.no_grad():
            return self.residual_norm(self.simulate(self.encode(x0), ctx), ctx, weighted=False)

    @staticmethod
    def _randn(shape, generator: torch.Generator | None, device=None, dtype=torch.float32) -> torch.Tensor:
        gdev = generator.device if generator is not None else "cpu"
        return torch.randn(shape, generator=generator, device=gdev, dtype=dtype).to(device or "cpu")

    def _model(self, prior, x_t: torch.Tensor, k: torch.Tensor):
        """One prior evaluation on the respaced chain ``prior``: ``(x̂0 clipped, var)``."""
        ctx = contextlib.nullcontext()
        if self.autocast:
            dev = x_t.device.type
            ctx = torch.autocast(dev, dtype=torch.float16 if dev == "cuda" else torch.bfloat16)
        with ctx:
            eps, var = prior.model_output(x_t, k)
        eps = eps.float()
        if var is None:
            var = prior.reverse_variance.to(x_t.device)[k].float().view(-1, 1, 1, 1)
        return prior.predict_x0(x_t, k, eps).clamp(-1, 1), var.float()

    # ------------------------------------------------------------------ the loop
    def sample(self, ctx: MeasurementContext, generator: torch.Generator | None = None) -> SampleResult:
        """Run the guided reverse process; see the module doc."""
        steps = self.timesteps()
        chain = self.prior.on_steps(sorted(steps))  # respaced schedule of exactly these steps
        x = self.init(ctx, generator)
        aux = self.init_aux(ctx, generator)
        device = x.device
        trace = {"t": [], "loss": []} if self.record_metrics else {}
        n = len(steps)
        for i, t in enumerate(steps):
            k = torch.full((x.shape[0],), n - 1 - i, dtype=torch.long, device=device)  # index in `chain`
            s = steps[i + 1] if i + 1 < n else -1
            if s < 0:  # the last step: unguided posterior mean, no noise (reference behaviour)
                with torch.no_grad():
                    x0, _ = self._model(chain, x, k)
                    x = chain.posterior_mean_variance(x0, x, k)[0]
                    ctx.aux_x0 = self.aux_x0(aux, t)
                aux = self.aux_step(aux, {}, t, s, i, n, generator)
                break
            x_t = x.detach().requires_grad_(True)
            aux_t = {key: v.detach().requires_grad_(True) for key, v in aux.items()}
            with torch.enable_grad():
                x0, var = self._model(chain, x_t, k)
                ctx.aux_x0 = self.aux_x0(aux_t, t)
                loss = self.guide(x0, ctx, i)
                variables = [x_t, *aux_t.values()]
                grads = torch.autograd.grad(loss.sum(), variables, allow_unused=True)
            grads = [torch.zeros_like(v) if g is None else g for v, g in zip(variables, grads)]
            mean = chain.posterior_mean_variance(x0.detach(), x_t.detach(), k)[0]
            x = mean + var.detach() ** 0.5 * self._randn(x.shape, generator, device) - self.learning_rate(i, n) * grads[0]
            aux = self.aux_step(aux, dict(zip(aux_t.keys(), grads[1:])), t, s, i, n, generator)
            if self.record_metrics:
                trace["t"].append(t)
                trace["loss"].append(loss.detach().cpu())
        ctx.aux_x0 = None
        return SampleResult(x0=x.detach().clamp(-1, 1), nfe=n, trace=trace, aux=aux)

    def decode(self, rx: RxSignal, state=None, generator: torch.Generator | None = None) -> Decoded:
        """Received signal -> :class:`Decoded` (images in ``[0, 1]``, ``nfe`` per image)."""
        ctx = self.prepare(rx, rx.state if state is None else state)
        res = self.sample(ctx, generator)
        return Decoded(images=((res.x0 + 1) / 2).clamp(0, 1), nfe=res.nfe, extras=self.extras(res, ctx))

    def extras(self, res: SampleResult, ctx: MeasurementContext) -> dict:
        """Per-image numbers for ``results.csv`` (default: none)."""
        return {}
