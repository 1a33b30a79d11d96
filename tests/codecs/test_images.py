"""``linksim.codecs.images``: corpus lists, reading, the two resizes, folders, PSNR.

The pinned statistics (mean and mean absolute horizontal difference, float64) were measured with
the implementations this module replaced (``codecs/jscc/training.py``'s ``_resize``,
``_resize_center_crop``, ``embedded_photos`` and ``linksim/data.py``'s ``resize_center_crop``):
the trained embedded weights and the scenarios' images depend on them staying as they are. The
tolerance (1e-6) is far below the gap between the modes (bilinear vs bicubic at 64 px: 5e-3 in
the difference statistic).
"""

import errno

import numpy as np
import pytest
import torch
from PIL import Image

from linksim.codecs import images as I
from linksim.codecs.jscc import training as jscc_training


def _stats(t: torch.Tensor) -> tuple[tuple[int, ...], float, float]:
    """shape, mean and mean |horizontal difference| (float64: summation order does not matter)."""
    t = t.double()
    return tuple(t.shape), float(t.mean()), float((t[..., 1:] - t[..., :-1]).abs().mean())


def _check(t: torch.Tensor, shape, mean, hdiff):
    got = _stats(t)
    assert got[0] == shape
    assert got[1] == pytest.approx(mean, abs=1e-6) and got[2] == pytest.approx(hdiff, abs=1e-6)


def test_corpus_lists_are_pinned_and_shared():
    # scenario order (results rows) and training corpus (trained weights) must not drift
    assert I.EMBEDDED_IMAGES == ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                                 "immunohistochemistry", "retina")
    assert I.EMBEDDED_PHOTOS == I.EMBEDDED_IMAGES + ("stereo_motorcycle",)
    assert I.EMBEDDED_HOLDOUT == ("coffee", "chelsea")
    import linksim.data

    assert linksim.data.EMBEDDED_IMAGES is I.EMBEDDED_IMAGES
    assert jscc_training.EMBEDDED_PHOTOS is I.EMBEDDED_PHOTOS


def test_embedded_photos_read_and_cached():
    photos = I.embedded_photos(("astronaut", "stereo_motorcycle"))
    assert list(photos) == ["astronaut", "stereo_motorcycle"]
    _check(photos["astronaut"], (3, 512, 512), 0.4494078684154796, 0.028207204181393948)
    _check(photos["stereo_motorcycle"], (3, 500, 741), 0.42237125959829774, 0.03225958378880226)  # left view
    assert photos["astronaut"].dtype == torch.float32
    arr = I.embedded_array("astronaut")
    assert arr is I.embedded_array("astronaut") and not arr.flags.writeable
    photos["astronaut"].zero_()  # tensors are copies: the cache is untouched
    assert int(I.embedded_array("astronaut").max()) == 255
    with pytest.raises(ValueError, match="no embedded image 'nope'"):
        I.embedded_array("nope")


@pytest.mark.parametrize("name, scale, stats", [
    ("astronaut", 0.5, ((3, 256, 256), 0.4494092069874842, 0.03578278671960855)),
    ("astronaut", 0.3, ((3, 153, 153), 0.4508129756695829, 0.04983368290791974)),  # floor(512 * 0.3)
    ("retina", 0.125, ((3, 176, 176), 0.35324785938431724, 0.011882534621709188)),
])
def test_rescale_matches_the_training_corpus(name, scale, stats):
    _check(I.rescale(I.embedded_photos((name,))[name], scale), *stats)


def test_rescale_one_is_the_image_itself():
    x = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    assert I.rescale(x, 1.0) is x


def test_resize_center_crop_modes():
    coffee = I.embedded_photos(("coffee",))["coffee"]
    # bilinear: the JSCC training's held-out images (eval_images); bicubic: the scenarios
    _check(I.resize_center_crop(coffee, 64, 64, mode="bilinear"), (3, 64, 64), 0.36297529810489476, 0.04045594204278791)
    _check(I.resize_center_crop(coffee, 64, 64), (3, 64, 64), 0.3629595701047819, 0.04589127137495342)
    astro = I.embedded_photos(("astronaut",))["astronaut"]
    _check(I.resize_center_crop(astro, 30, 50), (3, 30, 50), 0.46524145337512435, 0.09941095339833099)
    ev = jscc_training.eval_images(jscc_training.DataConfig())
    _check(ev, (2, 3, 64, 64), 0.4017418459806284, 0.0401156926693157)
    from linksim.data import load_images

    _check(load_images("embedded", size=64).images, (7, 3, 64, 64), 0.3702330938176262, 0.046130661681231235)


def test_resize_center_crop_geometry():
    # a 4x8 ramp to 2x2: scale 0.5 -> 2x4, centre columns 1..2 of the downscaled ramp
    x = torch.arange(8.0).repeat(3, 4, 1) / 8
    y = I.resize_center_crop(x, 2, 2, mode="bilinear")
    ref = torch.nn.functional.interpolate(x[None], size=(2, 4), mode="bilinear", antialias=True)[0, :, :, 1:3]
    assert y.shape == (3, 2, 2) and y.is_contiguous() and torch.equal(y, ref)
    assert torch.equal(I.resize_center_crop(x, 4, 8), x)  # already the output size


def test_to_tensor_conversions():
    gray = np.full((3, 4), 51, np.uint8)
    assert torch.equal(I.to_tensor(gray), torch.full((3, 3, 4), 0.2))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[0, :, 3] = 255, 255  # top row opaque red, bottom row transparent
    t = I.to_tensor(rgba)
    assert torch.equal(t[:, 0], torch.tensor([1.0, 0, 0])[:, None].expand(3, 2))
    assert torch.equal(t[:, 1], torch.ones(3, 2))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.full((9, 9), 200, np.uint8)).save(tmp_path / "b.bmp")  # same stem as b.png
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((8, 8, 3), 10, np.uint8)).save(tmp_path / "sub" / "a.PNG")
    (tmp_path / "dir.png").mkdir()  # a directory with an image suffix is not a file
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_files_names_and_order(folder):
    files = I.folder_files(folder)
    assert [n for n, _ in files] == ["b_bmp", "b_png", "sub__a"]
    assert [p.name for _, p in files] == ["b.bmp", "b.png", "a.PNG"]
    photos = I.folder_photos(folder)
    assert list(photos) == ["b_bmp", "b_png", "sub__a"]
    assert torch.equal(photos["b_bmp"], torch.full((3, 9, 9), 200 / 255))
    assert photos["b_png"].shape == (3, 12, 10)


def test_folder_errors(folder, tmp_path_factory):
    with pytest.raises(FileNotFoundError) as err:
        I.folder_files(folder / "missing")
    assert (err.value.errno, err.value.strerror) == (errno.ENOENT, "folder does not exist")
    assert err.value.filename == str(folder / "missing")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="no image files"):
        I.folder_files(empty)
    (folder / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"c\.png: ") as err:
        I.folder_photos(folder)
    assert "\n" not in str(err.value)


def test_psnr():
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    p = I.psnr(y, x)
    assert p.shape == (2,)
    assert float(p[0]) == pytest.approx(20.0, abs=1e-4)
    assert float(p[1]) == pytest.approx(100.0)  # identical: MSE floored at 1e-10
