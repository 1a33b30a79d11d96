"""The diffusion-posterior-sampling loop shared by the DiffCom receivers.

One guided ancestral step (DPS, Chung et al.; DiffCom, Wang et al.)::

    ε = prior.eps(x_t, t)                               1 NFE
    x̂0 = clip(prior.predict_x0(x_t, t, ε), −1, 1)       Tweedie
    x'_s = μ̃(x̂0, x_t) + σ̃·z                            DDPM posterior q(x_s | x_t, x̂0), s < t
    x_s = x'_s − lr·∇_{x_t} loss(x̂0)                    loss = subclass guide(), e.g. ζ·‖y − A(x̂0)‖₂

``A`` = frozen JSCC encoder on ``(x̂0 + 1)/2`` followed by the chain's noise-free, differentiable
:meth:`~linksim.phy.chains.ChannelState.forward_operator` (estimated channel, stored interleaver,
same equaliser). The posterior mean is always computed from the *clipped* x̂0. On consecutive
steps (``s = t − 1``) the noise variance is the prior's own (``p_sample_stats``: learned sigma or
its fixed choice), as in DPS/DiffCom; on strided steps (``s`` = the next spaced step) the
posterior uses the respaced ``β = 1 − ᾱ_t/ᾱ_s`` and the "small" variance
``σ̃² = β(1−ᾱ_s)/(1−ᾱ_t)`` (a learned variance is not respaced: known gap). All images of a batch
are sampled together; the loss is a sum of per-image terms, so each image's gradient is its own.

Subclasses (:class:`~linksim.codecs.diffusion.diffcom.DiffCom`,
:class:`~linksim.codecs.diffusion.hifi.HiFiDiffCom`,
:class:`~linksim.codecs.diffusion.blind.BlindDiffCom`) override :meth:`DiffusionReceiver.guide`
and, where needed, :meth:`~DiffusionReceiver.timesteps`, :meth:`~DiffusionReceiver.init`,
:meth:`~DiffusionReceiver.learning_rate` and the auxiliary-variable hooks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from ..base import Decoded, Receiver, RxSignal

__all__ = ["linear_alphas_cumprod", "spaced_steps", "SampleResult", "DiffusionReceiver"]


def linear_alphas_cumprod(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """``ᾱ_t = Π_{i<=t} (1 − β_i)`` of the linear schedule (DDPM), ``[T]`` float64."""
    betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


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
    :param trace: per-step metrics (``{"t": [...], "loss": [[B], ...]}``) when recording, else empty
    :param aux: final auxiliary variables (e.g. Blind-DiffCom's channel taps)
    """

    x0: torch.Tensor
    nfe: int
    trace: dict = field(default_factory=dict)
    aux: dict = field(default_factory=dict)


class DiffusionReceiver(Receiver):
    """Guided ancestral sampling with a pixel-space prior and a JSCC forward operator.

    :param prior: ``Prior`` (``num_timesteps``, ``alphas_cumprod`` ``[T]``, ``eps(x_t, t)``,
        ``predict_x0(x_t, t, eps)``; images in ``[-1, 1]``)
    :param jscc: frozen ADJSCC (``encode(images [0,1], csnr_db)`` -> ``[B, N]`` complex and
        ``decode(y, csnr_db, no_eff, image_size, tx_scale)``), or ``None`` when a subclass needs none
    :param csnr_db: nominal CSNR [dB] fed to the JSCC AF modules
    :param image_shape: ``(H, W)``
    :param num_steps: number of (strided) steps from the start to 0; ``None`` = every step
    :param zeta: ζ, weight of the measurement term
    :param lr: guidance step size (constant; subclasses may schedule it)
    :param autocast: run the prior under ``torch.autocast`` (bfloat16 on CPU, float16 on CUDA)
    :param record_metrics: keep the per-step loss in :attr:`SampleResult.trace` (off: no cost)
    :param measurement: how the equalised residual ``y − A(x̂0)`` is weighted per symbol.
        ``"biased_mmse"`` (default, what the reference code measures): on equalised (fading)
        links the residual of symbol ``k`` is scaled by the MMSE bias ``b_k = 1/(1 + no_eff_k)``,
        i.e. the loss compares *biased* MMSE outputs ``b·y`` and ``b·A(x̂0)``; deep fades, whose
        unbiased outputs are mostly noise, then barely pull the sample. With one antenna the
        unbiased output makes ``A(x; ĥ)`` the encoder alone and every symbol counts equally.
        AWGN links have no equaliser: weight 1 either way. ``"unbiased"``: weight 1 everywhere.
    """

    def __init__(self, prior, jscc, csnr_db: float, image_shape, *, num_steps: int | None = None,
                 zeta: float = 1.0, lr: float = 1.0, autocast: bool = False, record_metrics: bool = False,
                 measurement: str = "biased_mmse"):
        if measurement not in ("biased_mmse", "unbiased"):
            raise ValueError(f"measurement must be 'biased_mmse' or 'unbiased'; got {measurement!r}")
        self.measurement = measurement
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

    def prepare(self, rx: RxSignal, state) -> dict:
        """The measurement context: ``y`` ``[B, N]``, ``state``, ``no_eff``, ``tx_scale``, ``x_mse``."""
        ctx = {"y": rx.y, "state": state, "no_eff": getattr(state, "no_eff", None),
               "tx_scale": rx.tx_meta.get("tx_scale")}
        ctx["weight"] = self.residual_weight(state, ctx["no_eff"], rx.y)
        if self.jscc is not None:
            with torch.no_grad():
                ctx["x_mse"] = self.jscc.decode(rx.y, self.csnr_db, no_eff=ctx["no_eff"], image_size=self.image_shape,
                                                tx_scale=ctx["tx_scale"]).clamp(0, 1)
        return ctx

    def init(self, ctx: dict, generator: torch.Generator) -> torch.Tensor:
        """``x`` at the first step (default: pure noise ``N(0, I)``)."""
        b = ctx["y"].shape[0]
        return self._randn((b, 3, *self.image_shape), generator, ctx["y"].device)

    def init_aux(self, ctx: dict, generator: torch.Generator) -> dict:
        """Auxiliary variables diffused alongside ``x`` (default: none)."""
        return {}

    def aux_step(self, aux: dict, grads: dict, t: int, s: int, i: int, n: int, generator) -> dict:
        """Update the auxiliary variables from ``t`` to ``s`` given their loss gradients."""
        return aux

    def aux_x0(self, aux: dict, t: int) -> dict:
        """Differentiable clean estimates of the auxiliary variables (default: none)."""
        return {}

    def learning_rate(self, i: int, n: int) -> float:
        """Guidance step size at step ``i`` of ``n`` (default: constant :attr:`lr`)."""
        return self.lr

    def guide(self, x0_hat: torch.Tensor, ctx: dict, step: int) -> torch.Tensor:
        """Per-image guidance loss ``[B]`` of the clean estimate ``x0_hat`` ``[B,3,H,W]`` in [-1,1]."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def residual_weight(self, state, no_eff: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor | None:
        """Per-symbol weight ``[B, N]`` of the residual (``None`` = 1); see ``measurement``."""
        if self.measurement == "unbiased" or no_eff is None:
            return None
        link = getattr(state, "link", None)
        if getattr(getattr(link, "cfg", None), "kind", None) == "awgn":
            return None
        return (1.0 / (1.0 + no_eff.real.float())).to(y.device).expand(y.shape)

    @staticmethod
    def residual_norm(y_sim: torch.Tensor, ctx: dict, weighted: bool = True) -> torch.Tensor:
        """``‖w ⊙ (y − y_sim)‖₂`` per image ``[B]`` over all but the batch dimension (``w`` =
        ``ctx["weight"]`` from :meth:`residual_weight` when present and ``weighted``, else 1)."""
        r = ctx["y"] - y_sim
        if weighted and ctx.get("weight") is not None:
            r = r * ctx["weight"]
        return r.abs().square().flatten(1).sum(-1).sqrt()

    def encode(self, x0_hat: torch.Tensor) -> torch.Tensor:
        """``A``'s first half: the frozen JSCC encoder on ``(x̂0 + 1)/2`` -> ``[B, N]`` complex."""
        return self.jscc.encode((x0_hat + 1) / 2, self.csnr_db)

    def measurement_residual(self, x0: torch.Tensor, ctx: dict) -> torch.Tensor:
        """``‖y − A(x0)‖₂`` per image ``[B]`` (evaluation; no gradient; never weighted, so that
        receivers and weightings compare on one scale)."""
        with torch.no_grad():
            return self.residual_norm(ctx["state"].forward_operator(self.encode(x0)), ctx, weighted=False)

    @staticmethod
    def _randn(shape, generator: torch.Generator | None, device=None, dtype=torch.float32) -> torch.Tensor:
        gdev = generator.device if generator is not None else "cpu"
        return torch.randn(shape, generator=generator, device=gdev, dtype=dtype).to(device or "cpu")

    def _eps(self, x_t: torch.Tensor, t: torch.Tensor, consecutive: bool):
        """One prior evaluation: ``(eps, var)``; ``var`` is the prior's own reverse-step variance
        (learned or fixed, from ``p_sample_stats``) on consecutive steps, else ``None``."""
        use_stats = consecutive and hasattr(self.prior, "p_sample_stats")
        ctx = contextlib.nullcontext()
        if self.autocast:
            dev = x_t.device.type
            ctx = torch.autocast(dev, dtype=torch.float16 if dev == "cuda" else torch.bfloat16)
        with ctx:
            if use_stats:
                _, var, _, eps = self.prior.p_sample_stats(x_t, t)
                return eps.float(), var.float()
            return self.prior.eps(x_t, t).float(), None

    # ------------------------------------------------------------------ the loop
    def sample(self, ctx: dict, generator: torch.Generator | None = None) -> SampleResult:
        """Run the guided reverse process; see the module doc."""
        steps = self.timesteps()
        x = self.init(ctx, generator)
        aux = self.init_aux(ctx, generator)
        device = x.device
        trace = {"t": [], "loss": []} if self.record_metrics else {}
        n = len(steps)
        for i, t in enumerate(steps):
            s = steps[i + 1] if i + 1 < n else -1
            a_t = float(self._ac[t])
            a_s = float(self._ac[s]) if s >= 0 else 1.0
            x_t = x.detach().requires_grad_(True)
            aux_t = {k: v.detach().requires_grad_(True) for k, v in aux.items()}
            with torch.enable_grad():
                tt = torch.full((x.shape[0],), t, dtype=torch.long, device=device)
                eps, prior_var = self._eps(x_t, tt, consecutive=(s == t - 1))
                x0 = self.prior.predict_x0(x_t, tt, eps).clamp(-1, 1)
                ctx["aux_x0"] = self.aux_x0(aux_t, t)
                loss = self.guide(x0, ctx, i)
                variables = [x_t, *aux_t.values()]
                grads = torch.autograd.grad(loss.sum(), variables, allow_unused=True)
            grads = [torch.zeros_like(v) if g is None else g for v, g in zip(variables, grads)]
            # DDPM posterior q(x_s | x_t, x̂0) with the respaced beta of this stride.
            beta = 1.0 - a_t / a_s
            c0 = a_s**0.5 * beta / (1.0 - a_t)
            ct = (1.0 - beta) ** 0.5 * (1.0 - a_s) / (1.0 - a_t)
            mean = c0 * x0.detach() + ct * x_t.detach()
            if s >= 0:
                var = beta * (1.0 - a_s) / (1.0 - a_t) if prior_var is None else prior_var.detach()
                mean = mean + var**0.5 * self._randn(x.shape, generator, device)
            x = mean - self.learning_rate(i, n) * grads[0]
            aux = self.aux_step(aux, dict(zip(aux_t.keys(), grads[1:])), t, s, i, n, generator)
            if self.record_metrics:
                trace["t"].append(t)
                trace["loss"].append(loss.detach().cpu())
        ctx.pop("aux_x0", None)
        return SampleResult(x0=x.detach().clamp(-1, 1), nfe=n, trace=trace, aux=aux)

    def decode(self, rx: RxSignal, state=None, generator: torch.Generator | None = None) -> Decoded:
        """Received signal -> :class:`Decoded` (images in ``[0, 1]``, ``nfe`` per image)."""
        ctx = self.prepare(rx, rx.state if state is None else state)
        res = self.sample(ctx, generator)
        return Decoded(images=((res.x0 + 1) / 2).clamp(0, 1), nfe=res.nfe, extras=self.extras(res, ctx))

    def extras(self, res: SampleResult, ctx: dict) -> dict:
        """Per-image numbers for ``results.csv`` (default: none)."""
        return {}
