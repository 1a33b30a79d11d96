"""Tests of image loading: embedded corpus, folders, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from linksim.data import EMBEDDED_IMAGES, ImageSet, load_images, resize_center_crop
from linksim.errors import DataError


class TestEmbedded:
    def test_shapes_names_order(self):
        s = load_images("embedded", size=32)
        assert isinstance(s, ImageSet)
        assert s.images.shape == (len(EMBEDDED_IMAGES), 3, 32, 32) and s.images.dtype == torch.float32
        assert s.names == list(EMBEDDED_IMAGES) and s.names[:4] == ["astronaut", "coffee", "chelsea", "rocket"]
        assert 0 <= s.images.min() and s.images.max() <= 1
        # photos, not blank: every image has real contrast
        assert (s.images.flatten(1).std(1) > 0.05).all()

    def test_rectangular_size_limit_and_determinism(self):
        a = load_images("embedded", size=[24, 40], limit=3)
        b = load_images("embedded", size=[24, 40], limit=3)
        assert a.images.shape == (3, 3, 24, 40) and torch.equal(a.images, b.images)

    def test_centre_crop_of_full_resolution(self):
        # astronaut is 512x512: size 512 is the image itself, exactly
        from skimage import data

        x = load_images("embedded", size=512, limit=1).images[0]
        ref = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
        assert torch.equal(x, ref)

    def test_resize_keeps_mean_colour(self):
        big = load_images("embedded", size=256, limit=2).images
        small = load_images("embedded", size=32, limit=2).images
        assert torch.allclose(big.mean((2, 3)), small.mean((2, 3)), atol=0.01)

    def test_config_object(self):
        class Cfg:
            source, folder, size, limit = "embedded", None, 16, 2

        assert load_images(Cfg()).images.shape == (2, 3, 16, 16)

    def test_names_select_in_order(self):
        all_ = load_images("embedded", size=16)
        s = load_images("embedded", size=16, names=["chelsea", "coffee"])
        assert s.names == ["chelsea", "coffee"]
        assert torch.equal(s.images[0], all_.images[all_.names.index("chelsea")])
        assert load_images("embedded", size=16, names=["chelsea", "coffee"], limit=1).names == ["chelsea"]
        with pytest.raises(DataError, match=r"data.names.*\['cat'\].*astronaut"):
            load_images("embedded", size=16, names=["coffee", "cat"])
        with pytest.raises(DataError, match="repeat"):
            load_images("embedded", size=16, names=["coffee", "coffee"])

    @pytest.mark.parametrize("kw,match", [({"size": 0}, "data.size"), ({"size": [3]}, "data.size"),
                                          ({"limit": 0}, "data.limit"), ({"source": "web"}, "data.source"),
                                          ({"on_error": "ignore"}, "on_error")])
    def test_bad_arguments(self, kw, match):
        with pytest.raises(DataError, match=match):
            load_images(**{"source": "embedded", **kw})


def _save(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    _save(tmp_path / "b_rgb.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    _save(tmp_path / "a_gray.jpg", np.full((30, 30), 128, np.uint8))
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :10, 3] = 255  # left half opaque red, right half transparent
    _save(tmp_path / "sub" / "c_rgba.png", rgba)
    _save(tmp_path / "sub" / "d_odd.bmp", rng.integers(0, 256, (17, 23, 3), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


class TestFolder:
    def test_sorted_recursive_names(self, folder):
        s = load_images("folder", folder, size=16)
        assert s.names == ["a_gray", "b_rgb", "sub__c_rgba", "sub__d_odd"]
        assert s.images.shape == (4, 3, 16, 16)

    def test_grayscale_to_rgb(self, folder):
        x = load_images("folder", folder, size=16, limit=1).images[0]
        assert torch.allclose(x, torch.full_like(x, 128 / 255), atol=1 / 255)

    def test_rgba_composited_on_white(self, folder):
        s = load_images("folder", folder, size=[20, 20])
        x = s.images[s.names.index("sub__c_rgba")]
        assert torch.allclose(x[:, :, :8], torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 20, 8), atol=0.02)
        assert torch.allclose(x[:, :, 12:], torch.ones(3, 20, 8), atol=0.02)

    def test_odd_size_output(self, folder):
        assert load_images("folder", folder, size=[15, 21]).images.shape == (4, 3, 15, 21)

    def test_corrupt_file_names_the_file(self, folder):
        (folder / "sub" / "e_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        with pytest.raises(DataError, match=r"e_broken\.png: .*") as err:
            load_images("folder", folder, size=16)
        assert "\n" not in str(err.value)
        with pytest.warns(UserWarning, match="e_broken.png"):
            s = load_images("folder", folder, size=16, on_error="skip")
        assert len(s) == 4

    def test_one_pixel_image_is_an_error(self, folder):
        _save(folder / "tiny.png", np.zeros((1, 1, 3), np.uint8))
        with pytest.raises(DataError, match=r"tiny\.png: image is 1x1 pixels"):
            load_images("folder", folder, size=16)

    def test_truncated_jpeg(self, folder):
        data = (folder / "a_gray.jpg").read_bytes()
        (folder / "a_gray.jpg").write_bytes(data[: len(data) // 2])
        with pytest.raises(DataError, match="a_gray.jpg"):
            load_images("folder", folder, size=16)

    def test_missing_and_empty_folder(self, tmp_path):
        with pytest.raises(DataError, match="does not exist"):
            load_images("folder", tmp_path / "nope")
        with pytest.raises(DataError, match="no image files"):
            load_images("folder", tmp_path)
        with pytest.raises(DataError, match="data.folder"):
            load_images("folder", None)

    def test_sixteen_bit_png(self, tmp_path):
        arr = np.full((12, 12), 65535 // 2, np.uint16)
        Image.fromarray(arr).save(tmp_path / "deep.png")
        x = load_images("folder", tmp_path, size=12).images[0]
        assert torch.allclose(x, torch.full_like(x, 0.5), atol=1 / 255)


def test_resize_center_crop_upsamples_small_images():
    x = torch.rand(3, 10, 20, generator=torch.Generator().manual_seed(0))
    y = resize_center_crop(x, 32, 32)
    assert y.shape == (3, 32, 32) and 0 <= y.min() and y.max() <= 1
